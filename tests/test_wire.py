"""The closure wire protocol (macro.parallel.wire): typed messages round-trip exactly, bad
messages are refused with a message naming what is wrong, the layout is the documented one."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macro.parallel import wire

DTYPES = ["<f8", "<f4", "<i8", "<i4", "|u1", "|b1", "|S7"]


def _array(draw, dtype: str, shape: tuple) -> np.ndarray:
    n = int(np.prod(shape))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.startswith("|S"):
        a = np.array([rng.bytes(rng.integers(0, 8)).replace(b"\0", b"x") for _ in range(n)],
                     dtype)
    elif dtype == "|b1":
        a = rng.random(n) < 0.5
    elif dtype[1] == "f":
        a = rng.standard_normal(n).astype(dtype)
        if n:
            a[0] = [np.inf, -0.0, np.nan, 1e-308][draw(st.integers(0, 3))]
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    return a.reshape(shape)


@st.composite
def messages(draw):
    names = draw(st.lists(st.text(min_size=1, max_size=12), max_size=5, unique=True))
    arrays = {}
    for name in names:
        shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
        arrays[name] = _array(draw, draw(st.sampled_from(DTYPES)), shape)
    kind = draw(st.sampled_from(sorted(wire.KIND_NAMES)))
    return kind, draw(st.integers(0, 2**62)), arrays


@settings(max_examples=200, deadline=None)
@given(messages())
def test_round_trip_is_exact(msg):
    kind, call, arrays = msg
    buf = wire.encode(kind, call, arrays)
    assert len(buf) % 8 == 0
    k2, c2, a2 = wire.decode(bytes(buf))
    assert (k2, c2) == (kind, call) and list(a2) == list(arrays)
    for name, a in arrays.items():
        b = a2[name]
        assert b.dtype == a.dtype and b.shape == a.shape
        assert a.tobytes() == b.tobytes(), name  # bit for bit, NaN payloads and -0.0 included


def test_layout_is_the_documented_one():
    """Header: magic, version, kind, call, n_arrays, 3 reserved; then per array name_len,
    dtype_len, ndim, nbytes, shape, name, dtype, data, each padded to 8 bytes."""
    buf = bytes(wire.encode(wire.QUERY, 7, {"ab": np.array([1.5, 2.0])}))
    assert buf[:8] == b"PCLOSURE"
    head = np.frombuffer(buf, np.int64, 7, 8).tolist()
    assert head == [wire.VERSION, 1, 7, 1, 0, 0, 0]
    assert np.frombuffer(buf, np.int64, 5, 64).tolist() == [2, 3, 1, 16, 2]
    assert buf[104:106] == b"ab" and buf[112:115] == b"<f8"
    assert np.frombuffer(buf, np.float64, 2, 120).tolist() == [1.5, 2.0]
    assert len(buf) == 136


def test_query_request_round_trip_scalar_and_per_cell_dt():
    ids, p = np.array([4, 1, 9]), np.array([1e9, 2e9, 3e9])
    for dt, seed in ((1e-9, None), (np.array([1e-9, 2e-9, 3e-9]), 12)):
        a = wire.decode(wire.encode(wire.QUERY, 1, wire.query_request(
            ids, p, dt, "online", False, seed)))[2]
        ids2, p2, dt2, opts = wire.parse_query(a)
        assert ids2.tolist() == ids.tolist() and p2.tolist() == p.tolist()
        assert opts == {"mode": "online", "deterministic": False, "seed": seed}
        if np.ndim(dt) == 0:
            assert isinstance(dt2, float) and dt2 == dt
        else:
            assert dt2.tolist() == dt.tolist()


def test_state_round_trip():
    state = {"cells": {"ids": np.arange(5), "t": np.linspace(0, 1, 5)}, "name": "tiny",
             "labels": np.array(["a", "bc"]), "empty": {}, "count": np.int64(3)}
    back = wire.parse_state(wire.decode(wire.encode(wire.OK, 0, wire.state_arrays(state)))[2])
    assert back["cells"]["ids"].tolist() == list(range(5)) and back["name"] == "tiny"
    assert back["labels"].tolist() == ["a", "bc"] and back["empty"] == {}
    assert back["count"] == 3
    assert wire.parse_state({}) is None and wire.state_arrays(None) == {}


@pytest.mark.parametrize("mutate, match", [
    (lambda b: b"XCLOSURE" + b[8:], "not a closure protocol message"),
    (lambda b: b[:8] + np.int64(99).tobytes() + b[16:], "protocol version 99"),
    (lambda b: b[:16] + np.int64(17).tobytes() + b[24:], "unknown message kind 17"),
    (lambda b: b[:-8], "runs past the end"),
    (lambda b: b[:88] + np.int64(24).tobytes() + b[96:], "do not make 24 bytes"),
    (lambda b: b[:72], "malformed"),
    (lambda b: b[:112] + b"<U8\0\0\0\0\0" + b[120:], "dtype"),
])
def test_bad_messages_are_refused(mutate, match):
    buf = bytes(wire.encode(wire.QUERY, 3, {"ab": np.array([1.5, 2.0])}))
    with pytest.raises(wire.WireError, match=match):
        wire.decode(mutate(buf))


def test_unsupported_dtypes_are_refused_on_encode():
    with pytest.raises(wire.WireError, match="array 'x' has dtype object"):
        wire.encode(wire.OK, 0, {"x": np.array([None])})
    with pytest.raises(wire.WireError, match="big|little-endian"):
        wire.encode(wire.OK, 0, {"x": np.array([1.0], ">f8")})


def test_query_request_missing_array_is_named():
    a = wire.query_request(np.arange(2), np.ones(2), 1e-9, "table", True, None)
    del a["pressure"]
    with pytest.raises(wire.WireError, match="lacks array 'pressure'"):
        wire.parse_query(a)
