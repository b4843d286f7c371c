"""Hugoniot temperature versus pressure of the data generator's HMX EOS and of published fits.

Writes docs/hugoniot_T.png and prints a Markdown table. Run from the repository root:

    python docs/scripts/hugoniot.py

Curves (all from 300 K, 1900 kg/m3; SI inside, GPa and K on the plot):

* this project: beta-HMX Hayes EOS (EOSlib ``Hayes=HMX``: Murnaghan isotherm K0 13.5 GPa, N 9.3
  from Olinger, Roof & Cady's hydrostatic data, Gamma0 1.1 with Gamma*rho const, cv 1500
  J/(kg K)) -- ``closure.data.params.hugoniot_state`` (``macro.eos.Hayes``, Rankine-Hugoniot);
  the independent isotherm integration below reproduces it;
* previous: Mie-Grueneisen about Mader's PBX 9404 Us-up fit (c0 2423 m/s, s 1.883) with
  Gamma0 1.1, cv 1500 J/(kg K) -- ``macro.eos.MieGruneisen.hugoniot_temperature``;
* Mader / LANL EOSlib HMX.data: the same Us-up fit with Gamma0 0.65, cv 1670 J/(kg K);
* Menikoff & Sewell (2001): third-order Birch-Murnaghan isotherm K0 16.5 GPa, K0' 8.7,
  Gamma = 0.9 V/V0, cv 1500 J/(kg K);
* stiffened gas (gamma 6.5, p_inf 1.7 GPa, cv 1500), shown for contrast only.

The isotherm-based Mie-Grueneisen forms use e(V, T) = e_T0(V) + cv (T - T0) with
de_T0/dV = T0 Gamma cv / V - p_T0(V), and the Rankine-Hugoniot energy jump
e - e0 = (p + p0)(V0 - V)/2 solved for T at each V.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.integrate import cumulative_trapezoid

ROOT = Path(__file__).resolve().parents[2]

RHO0, T0 = 1900.0, 300.0
V0 = 1.0 / RHO0


def project_curve(up: np.ndarray):
    from closure.data.params import HMX, hugoniot_state

    st = [hugoniot_state(HMX, float(u), 0.0) for u in up]
    return np.array([s["p"] for s in st]), np.array([s["T"] for s in st])


def us_up_curve(gamma0: float, cv: float, up: np.ndarray):
    from macro.eos import MieGruneisen

    mg = MieGruneisen(rho0=RHO0, c0=2423.0, s=1.883, gamma0=gamma0, cv=cv)
    us = 2423.0 + 1.883 * up
    eta = up / us
    return RHO0 * us * up, mg.hugoniot_temperature(eta)


def isotherm_curve(p_iso, gamma_of_v, cv: float, vmin_ratio: float = 0.6):
    """Hugoniot (p, T) of an isotherm-referenced Mie-Grueneisen EOS with constant cv."""
    V = np.linspace(V0, vmin_ratio * V0, 4000)
    pT = p_iso(V)
    g = gamma_of_v(V)
    # e_T0(V) = -int_V0^V (pT - T0 g cv / V') dV'   (V decreasing: integrate on the grid)
    integrand = pT - T0 * g * cv / V
    eT = -cumulative_trapezoid(integrand, V, initial=0.0)
    dV = V0 - V
    denom = cv * (1.0 - g * dV / (2.0 * V))
    dT = (0.5 * pT * dV - eT) / denom
    ok = denom > 0
    T = T0 + dT
    p = pT + g / V * cv * dT
    return p[ok], T[ok]


def murnaghan(K0, N):
    return lambda V: K0 / N * ((V0 / V) ** N - 1.0)


def birch_murnaghan(K0, K1):
    def p(V):
        x = (V0 / V) ** (1.0 / 3.0)
        return 1.5 * K0 * (x**7 - x**5) * (1.0 + 0.75 * (K1 - 4.0) * (x * x - 1.0))
    return p


def stiffened_gas_curve(up, gamma=6.5, p_inf=1.7e9, cv=1500.0):
    """Shock in a stiffened gas from (rho0, p0 = 0); T = (p + p_inf)/((gamma-1) rho cv),
    offset so that the ambient state is at T0 (macro.eos.StiffenedGas temperature model)."""
    c0 = np.sqrt(gamma * p_inf / RHO0)
    us = (gamma + 1) / 4 * up + np.sqrt(((gamma + 1) / 4 * up) ** 2 + c0**2)
    p = RHO0 * us * up
    rho = RHO0 * us / (us - up)
    T = T0 + (p + p_inf) / ((gamma - 1) * rho * cv) - p_inf / ((gamma - 1) * RHO0 * cv)
    return p, T


def main(out: Path = ROOT / "docs" / "hugoniot_T.png") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    up = np.linspace(1.0, 2600.0, 400)
    curves = {
        "this project: beta-HMX Hayes (K0 13.5 GPa, N 9.3, Gamma0 1.1, cv 1500)":
            project_curve(up),
        "previous: Us-up 2423/1.883 (PBX 9404), Gamma0 1.1, cv 1500": us_up_curve(
            1.1, 1500.0, up),
        "Mader / EOSlib: Us-up MG, Gamma0 0.65, cv 1670": us_up_curve(0.65, 1670.0, up),
        "Menikoff & Sewell: BM3 K0 16.5 GPa, K0' 8.7, Gamma 0.9 V/V0": isotherm_curve(
            birch_murnaghan(16.5e9, 8.7), lambda V: 0.9 * V / V0, 1500.0),
    }
    sg = stiffened_gas_curve(up)
    fig, ax = plt.subplots(figsize=(7.2, 4.8), constrained_layout=True)
    hayes = isotherm_curve(murnaghan(13.5e9, 9.3), lambda V: 1.1 * V / V0, 1500.0)
    p_proj, T_proj = curves[next(iter(curves))]
    sel = p_proj < 30e9
    err = np.max(np.abs(np.interp(p_proj[sel], *hayes) - T_proj[sel]))
    print(f"independent Hayes isotherm integration vs project curve: max |dT| {err:.2f} K")
    styles = ["-", "--", "-.", ":"]
    for (name, (p, T)), ls in zip(curves.items(), styles, strict=True):
        sel = p <= 40e9
        ax.plot(p[sel] / 1e9, T[sel], ls, lw=2.2 if "this project" in name else 1.5, label=name)
    sel = sg[0] <= 40e9
    ax.plot(sg[0][sel] / 1e9, sg[1][sel], color="0.6", lw=1.0,
            label="stiffened gas gamma 6.5, p_inf 1.7 GPa (not used)")
    # numbers of an earlier prototype of this project
    ax.plot([8.0, 15.0, 23.5], [451, 655, 977], "s", mfc="none", color="C1",
            label="prototype: Mader (451/655/977 K)")
    ax.plot([8.0, 15.0, 23.5], [503, 745, 1119], "o", mfc="none", color="C0",
            label="prototype: Gamma0 1.1 (503/745/1119 K)")
    ax.plot([3.4, 9.4, 18.6, 31.0], [468, 755, 1188, 1779], "x", color="0.5",
            label="stiffened-gas prototype")
    ax.axhline(875.0, color="r", lw=0.8)
    ax.text(0.5, 890, "hotspot threshold 875 K", color="r", fontsize=8)
    up_lo, up_hi = 700.0, 1500.0
    p_lo, p_hi = (float(np.interp(u, up, p_proj)) / 1e9 for u in (up_lo, up_hi))
    for pp in (p_lo, p_hi):
        ax.axvline(pp, color="k", lw=0.6, ls=":")
    ax.axvspan(p_lo, p_hi, color="k", alpha=0.06, label="data loading range u_p 0.7-1.5 km/s")
    ax.set_xlim(0, 40)
    ax.set_ylim(250, 2000)
    ax.set_xlabel("shock pressure (GPa)")
    ax.set_ylabel("Hugoniot temperature (K)")
    ax.set_title("Unreacted HMX: shock temperature of the data EOS vs published fits", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.savefig(out, dpi=130)
    print(f"wrote {out}")
    print("\n| u_p (km/s) | p (GPa) | " + " | ".join(k.split(":")[0] for k in curves) + " |")
    print("|---" * (2 + len(curves)) + "|")
    for u in (0.3, 0.7, 1.0, 1.5, 1.6, 1.7, 2.0, 2.5):
        p_target = float(np.interp(u * 1e3, up, p_proj))
        row = [f"{u:.1f}", f"{p_target / 1e9:.1f}"]
        for p, T in curves.values():
            row.append(f"{np.interp(p_target, p, T):.0f}")
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
