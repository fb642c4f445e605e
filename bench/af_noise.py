"""How the AF decision's P-wave rules hold up when the patient moves: MIT-BIH records, clean and with
NSTDB muscle noise added, through the daemon's stream path and the 8-bit front end.

    .venv/bin/python bench/af_noise.py --cv runs/b17 [--records 101,201,...] [--noise ma6]

Each record is classified in non-overlapping 10-s windows (``ecgd.offline.classify_recording``, the
beat stage's beats labelled as they come, AF on the RR of the context) by the fold bundle of a
``train_beats`` run that never saw the patient (``--cv``; else the shipped bundle, in sample), once
clean and once with the noise added as ``bench/qrs_accuracy.py`` adds it (2 min on, 2 off, after the
first 5 min). A window is AF when its middle lies in a ``(AFIB``/``(AFL`` rhythm of the reference and
not AF when it touches none. Printed: ``p_wave_to_qrs`` (the mean P wave of the AF context's normal
beats over the QRS) of the AF windows and of the windows the RR series and the coherence rule alone
would call AF wrongly, and for each limit what a rule "no AF while the ratio is at least the limit"
would cost in AF windows and take away in false ones. The bundles must carry ``af_p_wave_min_ratio``
(any value), or no ratio is measured.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alarms import AF_RHYTHMS, DS1, Reference, device_signal, fold_bundles

from ecgd import config as cfg
from ecgd.analysis.model import load_model
from ecgd.io.records import Recording
from ecgd.offline import classify_recording

LIMITS = (0.008, 0.01, 0.012, 0.015, 0.02, 0.025)


def record_windows(path: Path, model, settings, noise: str | None) -> list[dict]:
    """The record's windows: AF truth (True / False / None: touches AF without lying in it), whether
    the RR series and the coherence rule call it AF, and its ``p_wave_to_qrs``."""
    mv, fs, ann = device_signal(path, settings.sampling.rate_hz, noise)
    ref = Reference(ann, fs, mv.size)
    meta = model.metadata
    out = []
    rows = classify_recording(
        Recording(mv, fs, path.name, "0"),
        model,
        meta.window_seconds,
        settings.analog_frontend,
        settings.quality,
        settings.beats.qrs,
        settings.beats.tracker,
        relearn=settings.relearn,
    )
    for r in rows:
        if r.get("probabilities") is None or "p_wave_to_qrs" not in r:
            continue
        mid = (r["start"] + r["end"]) // 2
        if ref.rhythm_near(AF_RHYTHMS, mid, mid + 1):
            truth = True
        elif not ref.rhythm_near(AF_RHYTHMS, r["start"], r["end"]):
            truth = False
        else:
            truth = None
        coherence = r["p_wave_coherence"]
        rr_says = r["probabilities"]["AF"] >= meta.af_threshold and not (
            meta.af_p_wave_max is not None and coherence is not None and coherence >= meta.af_p_wave_max
        )
        out.append({"truth": truth, "rr_says_af": rr_says, "ratio": r["p_wave_to_qrs"]})
    return out


def summary(name: str, windows: list[dict]) -> str:
    af = [w for w in windows if w["truth"] is True]
    called = [w for w in af if w["rr_says_af"]]
    false = [w for w in windows if w["truth"] is False and w["rr_says_af"]]

    def pct(ws: list[dict]) -> str:
        v = np.array([w["ratio"] for w in ws if w["ratio"] is not None])
        if v.size == 0:
            return "–"
        q = np.percentile(v, [50, 90, 99, 100])
        return " / ".join(f"{x:.4f}" for x in q) + f" ({v.size} judged)"

    lines = [
        f"### {name}\n",
        "| windows | count | `p_wave_to_qrs` 50th / 90th / 99th percentile / max |",
        "|---|---:|---|",
        f"| AF (reference) | {len(af)} | {pct(af)} |",
        f"| AF, called AF without the ratio rule | {len(called)} | {pct(called)} |",
        f"| not AF, called AF without the ratio rule | {len(false)} | {pct(false)} |",
        "",
        "| no AF at ratio ≥ | AF calls lost | false AF calls taken away |",
        "|---:|---:|---:|",
    ]
    for limit in LIMITS:
        lost = sum(w["ratio"] is not None and w["ratio"] >= limit for w in called)
        taken = sum(w["ratio"] is not None and w["ratio"] >= limit for w in false)
        lines.append(f"| {limit:g} | {lost} of {len(called)} | {taken} of {len(false)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    repo = Path(__file__).resolve().parent.parent
    data = Path(os.environ.get("ECGD_DATA", repo.parent / "shared" / "data"))
    p.add_argument("--data", type=Path, default=data)
    p.add_argument(
        "--cv", type=Path, help="a train_beats run: each record scored by the fold that never saw it"
    )
    p.add_argument("--records", default=",".join(DS1), help="MIT-BIH record ids (default: DS1)")
    p.add_argument("--noise", default="ma6", help="NSTDB noise kind and SNR (dB), e.g. ma6")
    args = p.parse_args()
    settings = cfg.Settings()
    model = load_model(settings.model_path, settings.metadata_path)
    fold_models = fold_bundles(args.cv) if args.cv is not None else {}
    results: dict[str, list[dict]] = {"clean": [], args.noise: []}
    for rid in args.records.split(","):
        m = fold_models.get(f"mitdb/{rid}", model)
        for noise in (None, args.noise):
            results[noise or "clean"] += record_windows(args.data / "mitdb" / rid, m, settings, noise)
        print(f"# mitdb/{rid}", file=sys.stderr, flush=True)
    print(f"## The AF decision's P-wave ratio, MIT-BIH {args.records} (--cv {args.cv})\n")
    for name, windows in results.items():
        print(summary("clean" if name == "clean" else f"NSTDB {name} added", windows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
