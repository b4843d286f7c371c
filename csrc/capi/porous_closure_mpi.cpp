// libporous_closure_mpi.so: the whole C API plus closure_open_mpi (porous_closure_mpi.h), whose
// handles run their checked calls on closure workers over the wire protocol (docs/protocol.md;
// macro/parallel/wire.py is the reference implementation this file follows).
//
// One translation unit with porous_closure.cpp: the Engine interface, the front end's argument
// checks and the file helpers are internal to that file, and an MPMD handle must check its
// arguments exactly as a local one (same messages, nothing sent on a bad call). A program links
// this library or libporous_closure, not both.
//
// Failures: a worker's ERROR reply is CLOSURE_ERR_WORKER (that worker changed nothing; the
// handle stays usable). No reply within the deadline (CLOSURE_ERR_TIMEOUT) or a reply that
// breaks the protocol (CLOSURE_ERR_PROTOCOL) take the handle down: replies may still be on the
// way, so later calls fail at once with the first message instead of reading stale answers.
#pragma GCC diagnostic ignored "-Wsubobject-linkage"  // struct closure, defined in the .cpp
#include "porous_closure.cpp"  // NOLINT(bugprone-suspicious-include): see above

#include <mpi.h>
#include <sched.h>
#include <time.h>

#include <climits>

#include "porous_closure_mpi.h"

namespace {

constexpr int64_t WIRE_VERSION = 1;
constexpr int TAG_REQ = 11, TAG_REP = 12;
constexpr int64_t K_QUERY = 1, K_RELEASE = 2, K_STATE = 3, K_LOAD = 4, K_STOP = 5, K_OK = 64,
                  K_ERROR = 65;
constexpr size_t WIRE_HEADER = 64;
constexpr char WIRE_MAGIC[8] = {'P', 'C', 'L', 'O', 'S', 'U', 'R', 'E'};
constexpr char MPMD_STATE_MAGIC[8] = {'P', 'C', 'M', 'P', 'M', 'D', 'S', '\0'};
constexpr uint32_t MPMD_STATE_VERSION = 1;
constexpr size_t MPMD_STATE_HEADER = 64;
constexpr double DEFAULT_TIMEOUT = 600.0;  // s, as macro.parallel.comm.DEFAULT_TIMEOUT
const char* const FIELDS[] = {"hotspot_area_fraction", "hotspot_temperature", "reaction_rate",
                              "uncertainty", "status"};

size_t pad8(size_t n) { return (n + 7) & ~size_t(7); }

std::string fmt_g(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", x);
  return b;
}

double now_s() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Polls test() until true; CLOSURE_ERR_TIMEOUT after timeout s. Yields the core at first
// (latency), then sleeps up to 0.5 ms so that waiting ranks leave the cores to computing ones
// (macro.parallel.comm.poll does the same).
template <class F>
void wait_until(F&& test, double timeout, const std::string& what) {
  const double deadline = now_s() + timeout;
  for (long n = 0;; ++n) {
    if (test()) return;
    if (n < 2000) {
      ::sched_yield();
      continue;
    }
    const long us = std::min(500L, n - 2000 + 1);
    struct timespec ts = {0, us * 1000};
    ::nanosleep(&ts, nullptr);
    if (now_s() > deadline)
      fail(CLOSURE_ERR_TIMEOUT, "no answer within " + fmt_g(timeout) + " s while " + what);
  }
}

// ---------------------------------------------------------------------------------------------
// messages (docs/protocol.md, "Messages")

class Message {
 public:
  Message(int64_t kind, int64_t call) : buf_(WIRE_HEADER, 0) {
    std::memcpy(buf_.data(), WIRE_MAGIC, 8);
    set(8, WIRE_VERSION);
    set(16, kind);
    set(24, call);
  }
  // a 1-D array of count items; its data is copied later by the caller into the returned span
  unsigned char* add(const std::string& name, const std::string& dtype, int64_t count,
                     size_t itemsize) {
    const size_t nbytes = (size_t)count * itemsize, at = buf_.size();
    buf_.resize(at + 40 + pad8(name.size()) + pad8(dtype.size()) + pad8(nbytes), 0);
    const int64_t meta[5] = {(int64_t)name.size(), (int64_t)dtype.size(), 1, (int64_t)nbytes,
                             count};
    std::memcpy(&buf_[at], meta, sizeof meta);
    size_t o = at + 40;
    std::memcpy(&buf_[o], name.data(), name.size());
    o += pad8(name.size());
    std::memcpy(&buf_[o], dtype.data(), dtype.size());
    o += pad8(dtype.size());
    set(32, ++narr_);
    return &buf_[o];
  }
  void add(const std::string& name, const std::string& dtype, const void* data, int64_t count,
           size_t itemsize) {
    unsigned char* d = add(name, dtype, count, itemsize);
    if (count) std::memcpy(d, data, (size_t)count * itemsize);
  }
  std::vector<unsigned char>& bytes() { return buf_; }

 private:
  void set(size_t at, int64_t v) { std::memcpy(&buf_[at], &v, 8); }
  std::vector<unsigned char> buf_;
  int64_t narr_ = 0;
};

struct Array {
  std::string name, dtype;
  int64_t count = 0;  // product of the shape
  size_t itemsize = 0;
  const unsigned char* data = nullptr;
};

struct Decoded {
  int64_t kind = 0, call = 0;
  std::vector<Array> arrays;
  const Array* find(const char* name) const {
    for (const auto& a : arrays)
      if (a.name == name) return &a;
    return nullptr;
  }
  std::string message() const {
    const Array* m = find("message");
    return m ? std::string(reinterpret_cast<const char*>(m->data), m->count * m->itemsize)
             : std::string("(no message)");
  }
};

// Strict decoding (macro.parallel.wire.decode): magic, version, kind, every descriptor, sizes.
Decoded decode(const std::vector<unsigned char>& b, const std::string& who) {
  auto bad = [&](const std::string& what) -> void {
    fail(CLOSURE_ERR_PROTOCOL, who + " sent a malformed message: " + what);
  };
  auto i64 = [&](size_t at) {
    int64_t v;
    std::memcpy(&v, &b[at], 8);
    return v;
  };
  if (b.size() < WIRE_HEADER || std::memcmp(b.data(), WIRE_MAGIC, 8) != 0)
    bad("not a closure protocol message (" + std::to_string(b.size()) + " bytes)");
  Decoded d;
  if (i64(8) != WIRE_VERSION)
    fail(CLOSURE_ERR_PROTOCOL, who + " speaks protocol version " + str_i64(i64(8)) +
                                   ", this library " + str_i64(WIRE_VERSION));
  d.kind = i64(16);
  d.call = i64(24);
  const int64_t narr = i64(32);
  if (narr < 0 || narr > 1 << 20) bad("n_arrays = " + str_i64(narr));
  size_t o = WIRE_HEADER;
  for (int64_t i = 0; i < narr; ++i) {
    if (o + 32 > b.size()) bad("truncated");
    const int64_t nl = i64(o), dl = i64(o + 8), nd = i64(o + 16), nb = i64(o + 24);
    if (nl < 0 || dl < 1 || dl > 16 || nd < 0 || nd > 32 || nb < 0 ||
        o + 32 + 8 * (size_t)nd > b.size())
      bad("array " + str_i64(i) + ": bad descriptor");
    int64_t count = 1;
    for (int64_t k = 0; k < nd; ++k) {
      const int64_t s = i64(o + 32 + 8 * (size_t)k);
      if (s < 0 || (s && count > INT64_MAX / s)) bad("array " + str_i64(i) + ": bad shape");
      count *= s;
    }
    o += 32 + 8 * (size_t)nd;
    if (o + pad8((size_t)nl) + pad8((size_t)dl) + (size_t)nb > b.size()) bad("truncated");
    Array a;
    a.name.assign(reinterpret_cast<const char*>(&b[o]), (size_t)nl);
    o += pad8((size_t)nl);
    a.dtype.assign(reinterpret_cast<const char*>(&b[o]), (size_t)dl);
    o += pad8((size_t)dl);
    // "<f8", "|u1", "|S5", ...: byte order, kind (bool, int, uint, float, bytes), item size
    const std::string& t = a.dtype;
    const bool ok = t.size() >= 3 && (t[0] == '<' || t[0] == '|' || t[0] == '=') &&
                    std::strchr("biufS", t[1]) && t.find_first_not_of("0123456789", 2) ==
                                                      std::string::npos;
    if (!ok) bad("array '" + a.name + "': dtype '" + t + "'");
    a.itemsize = (size_t)std::atoi(t.c_str() + 2);
    if (a.itemsize == 0 || (int64_t)a.itemsize * count != nb)
      bad("array '" + a.name + "': dtype " + t + " and shape do not make " + str_i64(nb) +
          " bytes");
    a.count = count;
    a.data = &b[o];
    o += pad8((size_t)nb);
    d.arrays.push_back(std::move(a));
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// the engine

struct Pending {
  MPI_Request req;
  std::vector<unsigned char> buf;
};

class MpiEngine final : public Engine {
 public:
  MpiEngine(MPI_Comm world, std::vector<int> workers, MPI_Comm clients, std::string mode,
            double timeout)
      : world_(world), workers_(std::move(workers)), clients_(clients), mode_(std::move(mode)),
        timeout_(timeout) {
    MPI_Comm_rank(clients_, &client_rank_);
    MPI_Comm_size(clients_, &nclients_);
  }

  ~MpiEngine() override {
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin) return;  // too late to tell the workers; their own deadline ends them
    try {
      stop();
    } catch (...) {  // a worker that takes no STOP: it is down already, and so is the handle
    }
    for (auto& p : pending_) {
      int done = 0;
      MPI_Test(&p.req, &done, MPI_STATUS_IGNORE);
      if (!done) {  // a send to a dead worker: MPI may still read the buffer, so keep it
        MPI_Request_free(&p.req);
        new std::vector<unsigned char>(std::move(p.buf));  // NOLINT: deliberately leaked
      }
    }
    MPI_Comm_free(&clients_);
  }

  bool has_burned_fraction() const override { return has_burned_; }
  int64_t n_cells() const override { return -1; }

  // An empty query to every worker: are they there, does the model answer this mode, with
  // which outputs (so that asking for a missing one is refused before anything is sent).
  void probe() {
    guard([&] {
      const double dt = 1e-9;
      std::vector<int> dests;
      ++call_;
      for (size_t w = 0; w < workers_.size(); ++w) {
        Message m(K_QUERY, call_);
        m.add("cell_ids", "<i8", nullptr, 0, 8);
        m.add("pressure", "<f8", nullptr, 0, 8);
        m.add("dt", "<f8", &dt, 1, 8);
        add_options(m);
        send(workers_[w], std::move(m));
        dests.push_back(workers_[w]);
      }
      const auto replies = collect(dests);
      for (size_t w = 0; w < replies.size(); ++w) {
        for (const char* f : FIELDS)
          if (!replies[w].find(f))
            fail(CLOSURE_ERR_PROTOCOL, "closure worker rank " + std::to_string(dests[w]) +
                                           " answers a query without '" + f + "'");
        if (w == 0) has_burned_ = replies[w].find("burned_fraction") != nullptr;
      }
    });
  }

  void query(const Query& q) override {
    guard([&] {
      if (q.n == 0) return;  // nothing to ask (a local handle changes nothing either)
      outbox_.clear();  // (a call refused while building its requests leaves some behind)
      split(q.n, q.ids);
      std::vector<int> dests;
      for (size_t w = 0; w < workers_.size(); ++w) {
        const int64_t k = count_[w];
        if (!k) continue;
        const int64_t* sel = k == q.n ? nullptr : &idx_[start_[w]];
        Message m(K_QUERY, call_ + 1);
        gather(m.add("cell_ids", "<i8", k, 8), q.ids, sel, k);
        gather(m.add("pressure", "<f8", k, 8), q.p, sel, k);
        if (q.dt_scalar)
          m.add("dt", "<f8", q.dt, 1, 8);
        else
          gather(m.add("dt", "<f8", k, 8), q.dt, sel, k);
        add_options(m);
        check_size(m);
        dests.push_back(workers_[w]);
        outbox_.push_back(std::move(m));
      }
      ++call_;
      for (size_t i = 0; i < dests.size(); ++i) send(dests[i], std::move(outbox_[i]));
      outbox_.clear();
      const auto replies = collect(dests);
      // every reply checked before the first output is written
      std::vector<const Array*> got(replies.size() * 6, nullptr);
      const char* names[6] = {"hotspot_area_fraction", "hotspot_temperature", "reaction_rate",
                              "uncertainty", "burned_fraction", "status"};
      void* outs[6] = {q.out.hotspot_area_fraction, q.out.hotspot_temperature,
                       q.out.reaction_rate, q.out.uncertainty, q.out.burned_fraction,
                       q.out.status};
      for (size_t r = 0, w = 0; r < replies.size(); ++r, ++w) {
        while (!count_[w]) ++w;
        for (int f = 0; f < 6; ++f) {
          if (!outs[f]) continue;
          const Array* a = replies[r].find(names[f]);
          const std::string who = "closure worker rank " + std::to_string(dests[r]);
          if (!a)
            fail(f == 4 ? CLOSURE_ERR_UNSUPPORTED : CLOSURE_ERR_PROTOCOL,
                 who + " answered without '" + names[f] + "'");
          const bool okt = f == 5 ? (a->dtype == "<i4" || a->dtype == "<i8") : a->dtype == "<f8";
          if (!okt || a->count != count_[w])
            fail(CLOSURE_ERR_PROTOCOL, who + " answered '" + names[f] + "' as " + a->dtype +
                                           "[" + str_i64(a->count) + "], expected " +
                                           (f == 5 ? "<i4" : "<f8") + "[" +
                                           str_i64(count_[w]) + "]");
          got[r * 6 + (size_t)f] = a;
        }
      }
      for (size_t r = 0, w = 0; r < replies.size(); ++r, ++w) {
        while (!count_[w]) ++w;
        const int64_t k = count_[w];
        const int64_t* sel = k == q.n ? nullptr : &idx_[start_[w]];
        for (int f = 0; f < 5; ++f)
          if (const Array* a = got[r * 6 + (size_t)f])
            scatter(static_cast<double*>(outs[f]), reinterpret_cast<const double*>(a->data),
                    sel, k);
        if (const Array* a = got[r * 6 + 5]) {
          auto* s = static_cast<int32_t*>(outs[5]);
          for (int64_t i = 0; i < k; ++i) {
            int64_t v;
            if (a->itemsize == 4) {
              int32_t v4;
              std::memcpy(&v4, a->data + 4 * i, 4);
              v = v4;
            } else {
              std::memcpy(&v, a->data + 8 * i, 8);
            }
            s[sel ? sel[i] : i] = (int32_t)v;
          }
        }
      }
    });
  }

  void release(int64_t n, const int64_t* ids) override {
    guard([&] {
      if (n == 0) return;
      split(n, ids);
      std::vector<int> dests;
      ++call_;
      for (size_t w = 0; w < workers_.size(); ++w) {
        const int64_t k = count_[w];
        if (!k) continue;
        Message m(K_RELEASE, call_);
        gather(m.add("cell_ids", "<i8", k, 8), ids, k == n ? nullptr : &idx_[start_[w]], k);
        check_size(m);
        send(workers_[w], std::move(m));
        dests.push_back(workers_[w]);
      }
      collect(dests);
    });
  }

  // Collective over the clients: client 0 asks every worker for its state (STATE) and writes
  // one file holding each worker's reply, atomically; every client returns its result.
  void save_state(const std::string& path) override {
    guard([&] {
      collective("closure_save_state", [&] {
        AtomicFile f(path);
        header(f);
        ++call_;
        for (int w : workers_) send(w, Message(K_STATE, call_));
        collect(workers_);  // checked: OK replies of this call
        for (size_t w = 0; w < workers_.size(); ++w) {
          const auto& buf = raw_[w];
          f.put<int64_t>((int64_t)w);
          f.put<int64_t>((int64_t)buf.size());
          f.write(buf.data(), buf.size());
          f.zeros(pad8(buf.size()) - buf.size());
        }
        f.commit();
      });
    });
  }

  // Collective over the clients: client 0 reads and checks the whole file, then sends every
  // worker its part (LOAD); every client returns its result.
  void load_state(const std::string& path) override {
    guard([&] {
      collective("closure_load_state", [&] {
        const auto d = read_file(path, "state file");
        if (d.size() >= 8 && std::memcmp(d.data(), STATE_MAGIC, 8) == 0)
          fail(CLOSURE_ERR_FORMAT, path + ": a state file of an in-process handle (PCSTATE); "
                                          "an MPMD handle loads what its closure_save_state "
                                          "wrote");
        check_envelope(d, MPMD_STATE_MAGIC, MPMD_STATE_VERSION, MPMD_STATE_HEADER, path,
                       "MPMD closure state");
        Reader r{d, 16, path};
        const int64_t m = r.get<int64_t>(), proto = r.get<int64_t>();
        if (proto != WIRE_VERSION)
          fail(CLOSURE_ERR_FORMAT, path + ": written with protocol version " + str_i64(proto) +
                                       ", this library speaks " + str_i64(WIRE_VERSION));
        if (m != (int64_t)workers_.size())
          fail(CLOSURE_ERR_MISMATCH,
               path + ": saved by a run with " + str_i64(m) + " closure workers, this run has " +
                   std::to_string(workers_.size()) + " (a cell lives on worker id mod M: load "
                   "it into a run with " + str_i64(m) + " workers)");
        r.at = MPMD_STATE_HEADER;
        std::vector<std::vector<unsigned char>> parts;
        for (int64_t w = 0; w < m; ++w) {
          const int64_t idx = r.get<int64_t>(), nb = r.get<int64_t>();
          if (idx != w || nb < (int64_t)WIRE_HEADER ||
              r.at + pad8((size_t)nb) > d.size() - DIGEST)
            fail(CLOSURE_ERR_FORMAT, path + ": malformed part " + str_i64(w));
          std::vector<unsigned char> part(d.begin() + (long)r.at, d.begin() + (long)r.at + nb);
          r.at += pad8((size_t)nb);
          Decoded pd;
          try {
            pd = decode(part, "part " + str_i64(w));
          } catch (const Failure& e) {
            fail(CLOSURE_ERR_FORMAT, path + ": " + e.msg);
          }
          if (pd.kind != K_OK) fail(CLOSURE_ERR_FORMAT, path + ": part " + str_i64(w) +
                                                            " is not a state reply");
          parts.push_back(std::move(part));
        }
        if (r.at != d.size() - DIGEST) fail(CLOSURE_ERR_FORMAT, path + ": trailing bytes");
        std::vector<int> dests;
        ++call_;
        for (size_t w = 0; w < workers_.size(); ++w) {
          const int64_t kind = K_LOAD;  // the state reply, re-addressed as a LOAD request
          std::memcpy(&parts[w][16], &kind, 8);
          std::memcpy(&parts[w][24], &call_, 8);
          send_raw(workers_[w], std::move(parts[w]));
          dests.push_back(workers_[w]);
        }
        collect(dests);
      });
    });
  }

  // STOP to every worker (closure_close); a worker exits once every client has stopped.
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    std::vector<MPI_Request> reqs;
    std::vector<Message> msgs;
    for (size_t w = 0; w < workers_.size(); ++w) msgs.emplace_back(K_STOP, 0);
    for (size_t w = 0; w < workers_.size(); ++w) {
      MPI_Request r;
      MPI_Isend(msgs[w].bytes().data(), (int)msgs[w].bytes().size(), MPI_BYTE, workers_[w],
                TAG_REQ, world_, &r);
      pending_.push_back({r, std::move(msgs[w].bytes())});
    }
    const double t = down_code_ ? std::min(timeout_, 1.0) : timeout_;
    wait_until([&] { return test_pending(); }, t, "stopping the closure workers");
  }

 private:
  template <class F>
  void guard(F&& f) {
    if (down_code_)
      fail(down_code_, "the closure workers are out of reach since an earlier failure: " +
                           down_msg_);
    try {
      f();
    } catch (const Failure& e) {
      if (e.code == CLOSURE_ERR_TIMEOUT || e.code == CLOSURE_ERR_PROTOCOL) {
        down_code_ = e.code;
        down_msg_ = e.msg;
      }
      throw;
    }
  }

  void add_options(Message& m) const {
    m.add("mode", "|S" + std::to_string(mode_.size()), mode_.data(), 1, mode_.size());
    const unsigned char yes = 1;
    m.add("deterministic", "|b1", &yes, 1, 1);
  }

  static void check_size(Message& m) {
    if (m.bytes().size() > (size_t)INT_MAX)
      fail(CLOSURE_ERR_ARGUMENT, "a request of " + std::to_string(m.bytes().size()) +
                                     " bytes is over one MPI message's limit (2 GiB): pass "
                                     "fewer cells per call");
  }

  // worker of each cell (id mod M, non-negative as NumPy's mod) and the cells grouped by it
  void split(int64_t n, const int64_t* ids) {
    const int64_t M = (int64_t)workers_.size();
    count_.assign((size_t)M, 0);
    start_.assign((size_t)M + 1, 0);
    if (M == 1) {
      count_[0] = n;
      return;
    }
    owner_.resize((size_t)n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t w = ((ids[i] % M) + M) % M;
      owner_[i] = w;
      ++count_[w];
    }
    for (int64_t w = 0; w < M; ++w) start_[w + 1] = start_[w] + count_[w];
    idx_.resize((size_t)n);
    std::vector<int64_t> at(start_.begin(), start_.end() - 1);
    for (int64_t i = 0; i < n; ++i) idx_[at[owner_[i]]++] = i;
  }

  template <class T>
  static void gather(unsigned char* dst, const T* src, const int64_t* sel, int64_t k) {
    if (!sel) {
      std::memcpy(dst, src, sizeof(T) * (size_t)k);
      return;
    }
    for (int64_t i = 0; i < k; ++i) std::memcpy(dst + sizeof(T) * i, &src[sel[i]], sizeof(T));
  }
  static void scatter(double* dst, const double* src, const int64_t* sel, int64_t k) {
    if (!sel) {
      std::memcpy(dst, src, 8 * (size_t)k);
      return;
    }
    for (int64_t i = 0; i < k; ++i) std::memcpy(&dst[sel[i]], &src[i], 8);
  }

  void send(int dest, Message&& m) { send_raw(dest, std::move(m.bytes())); }
  void send_raw(int dest, std::vector<unsigned char>&& buf) {
    Pending p;
    p.buf = std::move(buf);
    MPI_Isend(p.buf.data(), (int)p.buf.size(), MPI_BYTE, dest, TAG_REQ, world_, &p.req);
    pending_.push_back(std::move(p));
  }
  bool test_pending() {
    for (size_t i = 0; i < pending_.size();) {
      int done = 0;
      MPI_Test(&pending_[i].req, &done, MPI_STATUS_IGNORE);
      if (done) {
        pending_[i] = std::move(pending_.back());
        pending_.pop_back();
      } else {
        ++i;
      }
    }
    return pending_.empty();
  }

  std::vector<unsigned char> collect_raw(int src) {
    const std::string what = "waiting for closure worker rank " + std::to_string(src);
    MPI_Message msg;
    MPI_Status st;
    wait_until([&] {
      int flag = 0;
      MPI_Improbe(src, TAG_REP, world_, &flag, &msg, &st);
      return flag != 0;
    }, timeout_, what);
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    std::vector<unsigned char> buf((size_t)count);
    MPI_Mrecv(buf.data(), count, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
    return buf;
  }

  // One reply from each of dests, in that order (all of them, so the replies of this call are
  // all read even when one is an ERROR); then the first ERROR, if any, is the call's failure.
  std::vector<Decoded> collect(const std::vector<int>& dests) {
    raw_.clear();
    for (int d : dests) raw_.push_back(collect_raw(d));
    std::vector<Decoded> out;
    std::string err;
    for (size_t i = 0; i < dests.size(); ++i) {
      const std::string who = "closure worker rank " + std::to_string(dests[i]);
      Decoded d = decode(raw_[i], who);
      if (d.kind == K_ERROR) {
        if (err.empty()) err = who + " failed: " + d.message();
      } else if (d.kind != K_OK) {
        fail(CLOSURE_ERR_PROTOCOL, who + " answered with message kind " + str_i64(d.kind));
      } else if (d.call != call_) {
        fail(CLOSURE_ERR_PROTOCOL, who + " answered call " + str_i64(d.call) + ", expected " +
                                       str_i64(call_));
      }
      out.push_back(std::move(d));
    }
    if (!err.empty()) fail(CLOSURE_ERR_WORKER, err);
    wait_until([&] { return test_pending(); }, timeout_, "sending requests to the closure workers");
    return out;
  }

  void header(AtomicFile& f) const {
    f.write(MPMD_STATE_MAGIC, 8);
    f.put<uint32_t>(MPMD_STATE_VERSION);
    f.put<uint32_t>((uint32_t)MPMD_STATE_HEADER);
    f.put<int64_t>((int64_t)workers_.size());
    f.put<int64_t>(WIRE_VERSION);
    f.zeros(MPMD_STATE_HEADER - 32);
  }

  // Runs f on client 0 between a barrier and a broadcast of its result, so every client
  // returns the same code and message. Waits have deadlines: a client that never comes, or a
  // client 0 stuck on a worker, is an error here, never a hang.
  template <class F>
  void collective(const char* call, F&& f) {
    MPI_Request r;
    MPI_Ibarrier(clients_, &r);
    wait_until([&] {
      int done = 0;
      MPI_Test(&r, &done, MPI_STATUS_IGNORE);
      return done != 0;
    }, timeout_, std::string("waiting for the other clients in ") + call +
                     " (collective over the clients' communicator)");
    struct {
      int64_t code, call;
      char msg[4080];
    } res = {0, 0, {0}};
    if (client_rank_ == 0) {
      try {
        f();
      } catch (const Failure& e) {
        res.code = e.code;
        std::snprintf(res.msg, sizeof res.msg, "%s", e.msg.c_str());
      } catch (const std::bad_alloc&) {
        res.code = CLOSURE_ERR_NOMEM;
        std::snprintf(res.msg, sizeof res.msg, "out of memory");
      } catch (const std::exception& e) {
        res.code = CLOSURE_ERR_INTERNAL;
        std::snprintf(res.msg, sizeof res.msg, "internal error: %s", e.what());
      }
      res.call = call_;
    }
    MPI_Ibcast(&res, (int)sizeof res, MPI_BYTE, 0, clients_, &r);
    wait_until([&] {
      int done = 0;
      MPI_Test(&r, &done, MPI_STATUS_IGNORE);
      return done != 0;
    }, timeout_ * (double)(workers_.size() + 1),
         std::string("waiting for client 0's result of ") + call);
    call_ = res.call;  // clients count calls alike (the counter is per client, informative)
    if (res.code)
      fail((int)res.code, client_rank_ == 0 ? std::string(res.msg)
                                            : std::string(res.msg) + " (reported by client 0)");
  }

  MPI_Comm world_;
  std::vector<int> workers_;
  MPI_Comm clients_;  // the engine's own duplicate of the clients' communicator
  std::string mode_;
  double timeout_;
  int client_rank_ = 0, nclients_ = 1;
  int64_t call_ = 0;
  bool has_burned_ = false, stopped_ = false;
  int down_code_ = 0;
  std::string down_msg_;
  std::vector<Pending> pending_;
  std::vector<Message> outbox_;
  std::vector<std::vector<unsigned char>> raw_;
  std::vector<int64_t> count_, start_, idx_, owner_;
};

double resolve_timeout(double t) {
  if (std::isnan(t) || std::isinf(t) || t < 0)
    fail(CLOSURE_ERR_ARGUMENT, "timeout_s = " + py_repr(t) + " is out of range; timeout_s must "
                               "be > 0 s (0: $MACRO_MPI_TIMEOUT, else 600 s)");
  if (t > 0) return t;
  const char* env = std::getenv("MACRO_MPI_TIMEOUT");
  if (!env) return DEFAULT_TIMEOUT;
  char* end = nullptr;
  const double v = std::strtod(env, &end);
  if (end == env || *end || !(v > 0) || std::isinf(v))
    fail(CLOSURE_ERR_ARGUMENT, std::string("MACRO_MPI_TIMEOUT='") + env +
                                   "' must be a positive number of seconds");
  return v;
}

closure_t* open_mpi(MPI_Comm world, MPI_Comm* clients_out, const char* mode, double timeout_s) {
  closure_t* out = nullptr;
  if (clients_out) *clients_out = MPI_COMM_NULL;
  guarded(nullptr, [&] {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin)
      fail(CLOSURE_ERR_ARGUMENT, std::string("MPI is ") + (fin ? "finalized" : "not initialized") +
                                     ": closure_open_mpi runs between MPI_Init and MPI_Finalize");
    if (world == MPI_COMM_NULL) fail(CLOSURE_ERR_ARGUMENT, "world is MPI_COMM_NULL");
    // local checks are only recorded here: every rank takes part in the handshake first, so a
    // bad argument on one client is an error there, not a hang of all the others
    std::string local_error;
    int local_code = 0;
    std::string m = mode ? mode : "table";
    double timeout = 0;
    try {
      if (m != "table" && m != "online")
        fail(CLOSURE_ERR_ARGUMENT, "mode = '" + m + "' is not one of 'table', 'online'");
      timeout = resolve_timeout(timeout_s);
    } catch (const Failure& e) {
      local_code = e.code;
      local_error = e.msg;
    }
    int size = 0, rank = 0;
    MPI_Comm_size(world, &size);
    MPI_Comm_rank(world, &rank);
    const int64_t mine[2] = {0, WIRE_VERSION};  // role 0: client
    std::vector<int64_t> table(2 * (size_t)size);
    MPI_Allgather(mine, 2, MPI_INT64_T, table.data(), 2, MPI_INT64_T, world);
    std::vector<int> workers;
    std::string roles;
    int nclients = 0;
    for (int r = 0; r < size; ++r) {
      if (table[2 * r + 1] != WIRE_VERSION)
        fail(CLOSURE_ERR_PROTOCOL, "rank " + std::to_string(r) + " speaks closure protocol "
                                   "version " + str_i64(table[2 * r + 1]) + ", rank " +
                                   std::to_string(rank) + " speaks " + str_i64(WIRE_VERSION));
      const int64_t role = table[2 * r];
      roles += (r ? ", " : "") + str_i64(role);
      if (role == 0) ++nclients;
      if (role == 1) workers.push_back(r);
    }
    if (workers.empty() || nclients + (int)workers.size() != size)
      fail(CLOSURE_ERR_PROTOCOL, "an MPMD closure run needs client ranks (role 0) and worker "
                                 "ranks (role 1); the roles were [" + roles + "]");
    MPI_Comm clients;
    MPI_Comm_split(world, 0, rank, &clients);
    MPI_Comm own;
    MPI_Comm_dup(clients, &own);
    auto engine = std::make_unique<MpiEngine>(world, workers, own, m, local_code ? 1.0 : timeout);
    if (local_code) {  // the workers still wait for this client's STOP
      engine.reset();
      MPI_Comm_free(&clients);
      fail(local_code, local_error);
    }
    try {
      engine->probe();
    } catch (...) {
      engine.reset();
      MPI_Comm_free(&clients);
      throw;
    }
    auto c = std::make_unique<closure>();
    c->engine = std::move(engine);
    out = c.release();
    if (clients_out)
      *clients_out = clients;
    else
      MPI_Comm_free(&clients);
  });
  return out;
}

}  // namespace

extern "C" {

closure_t* closure_open_mpi(MPI_Comm world, MPI_Comm* clients_out, const char* mode,
                            double timeout_s) {
  return open_mpi(world, clients_out, mode, timeout_s);
}

closure_t* closure_open_mpi_f(MPI_Fint world, MPI_Fint* clients_out, const char* mode,
                              double timeout_s) {
  MPI_Comm clients = MPI_COMM_NULL;
  closure_t* c = open_mpi(MPI_Comm_f2c(world), &clients, mode, timeout_s);
  if (clients_out) *clients_out = MPI_Comm_c2f(clients);
  if (!clients_out && clients != MPI_COMM_NULL) MPI_Comm_free(&clients);
  return c;
}

}  // extern "C"
