"""Print the README's model figures (markdown) from the bundled model's metadata.

The metadata holds the cross-validated evaluation written by the training scripts when they ship a
model, so README's tables can only show what the shipped model measured; tests/test_readme.py checks
that they agree. Handles the beat-aware bundle (``"kind": "beats"``, 2.x) and the waveform CNNs (1.x).
"""

from __future__ import annotations

import json

from ecgd.config import BUNDLED_MODEL

TARGETS = {"N": (95, 95), "S": (60, 60), "V": (90, 90), "AF": (85, 85)}
BEAT_TARGETS = {"VEB": (92, 95), "SVEB": (80, 60)}
AF_ANCHORS = {"Tateno & Glass 2001": (94.4, 97.2), "Petrėnas 2015 (8 beats)": (97.1, 98.3)}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def model_card() -> str:
    meta = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())
    if meta.get("kind") == "beats":
        return _beats_card(meta)
    return _waveform_card(meta)


def _beats_card(meta: dict) -> str:
    ev = meta["evaluation"]
    thr = meta.get("beat_thresholds", {})
    lines = [
        f"Shipped: `{meta['name']}@{meta['version']}` (beat-aware), two float32 TFLite graphs, "
        f"{ev.get('model_bytes', 0) / 1000:.1f} kB together; beat thresholds S {thr.get('S')}, "
        f"V {thr.get('V')}, AF {meta.get('af_threshold')}. Labels {', '.join(meta['labels'])}; "
        f"abnormal {', '.join(meta['abnormal_labels'])}.",
        "",
        f"Patient-wise 5-fold cross-validation over {ev.get('patients', '?')} patients (MIT-BIH DS1 + SVDB, "
        f"{ev.get('windows', '?')} non-overlapping 10-s windows), each fold's TFLite bundle scored through "
        "the daemon's path with the 8-bit front end (`training/beat_eval.py`; thresholds per fold chosen "
        "on the other folds): judging the reference beat positions window by window, and on the daemon's "
        "own path (the beat stage's beats, each labelled once as it comes, each window judged from its "
        "labelled beats):",
        "",
        "| class | windows | Se / +P, reference positions (%) | Se / +P, daemon path (%) "
        "| target Se / +P (%) |",
        "|---|---:|---:|---:|---:|",
    ]
    stream = ev.get("stream") or {}
    for label in meta["labels"]:
        pc = ev["per_class"][label]
        sc = stream.get("per_class", {}).get(label)
        on_stream = f"{_pct(sc['se'])} / {_pct(sc['ppv'])}" if sc else "not run"
        t = TARGETS[label]
        lines.append(
            f"| {label} | {pc['n']} | {_pct(pc['se'])} / {_pct(pc['ppv'])} | {on_stream} | {t[0]} / {t[1]} |"
        )
    f1_stream = f"{stream['macro_f1']:.3f}" if stream else "–"
    lines += [
        f"| macro-F1 | | {ev['macro_f1']:.3f} | {f1_stream} | |",
        "",
        f"Patients with more than 10 % of their windows wrong: **{ev['patients_over_10pct']}**, more than "
        f"20 %: **{ev['patients_over_20pct']}** of {ev['patients']} with the reference positions"
        + (
            f"; **{stream['patients_over_10pct']}** and **{stream['patients_over_20pct']}** "
            "on the daemon path"
            if stream
            else ""
        )
        + " (target: none above 20 %).",
        "",
        "| beats (EC57 gross) | reference beats | Se / +P, reference positions (%) "
        "| Se / +P, daemon path (%) | target | de Chazal 2004 | Zhang 2014 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    anchors = ev.get("anchors", {})
    det = ev.get("beats_detector") or {}
    for k in ("VEB", "SVEB"):
        b = ev["beats_reference"][k]
        d = det.get(k)
        a1 = anchors.get("de Chazal 2004", {}).get(k, ("–", "–"))
        a2 = anchors.get("Zhang 2014", {}).get(k, ("–", "–"))
        via_detector = f"{_pct(d['se'])} / {_pct(d['ppv'])}" if d else "not run"
        lines.append(
            f"| {k} | {b['n']} | {_pct(b['se'])} / {_pct(b['ppv'])} | {via_detector} | "
            f"{BEAT_TARGETS[k][0]} / {BEAT_TARGETS[k][1]} | {a1[0]} / {a1[1]} | {a2[0]} / {a2[1]} |"
        )
    af = ev.get("af_ltafdb")
    if af:
        anchor = "; ".join(f"{k} {v[0]} / {v[1]}" for k, v in AF_ANCHORS.items())
        lines += [
            "",
            f"AF per 10-s window{_context(meta)} on the RR series of LTAFDB's 84 patients "
            f"(held-out folds): Se "
            f"{_pct(af['se'])} %, Sp {_pct(af['sp'])} % ({af['af_windows']} AF, {af['other_windows']} other "
            f"windows; anchors Se / Sp: {anchor}).",
        ]
    return "\n".join(lines) + "\n"


def _context(meta: dict) -> str:
    ctx = meta.get("af_context_seconds")
    return f" (decided on the RR of the {ctx:g} s ending with it)" if ctx else ""


def _waveform_card(meta: dict) -> str:
    ev = meta["evaluation"]
    clean = ev.get("without_frontend", {})
    lines = [
        f"Shipped: `{meta['name']}@{meta['version']}`, {ev.get('variant', '?')}, "
        f"{ev.get('model_bytes', 0) / 1000:.0f} kB, median {ev.get('inference_ms_median', 0):.2f} ms "
        f"per window (x86_64). Labels {', '.join(meta['labels'])}; "
        f"abnormal {', '.join(meta['abnormal_labels'])}.",
        "",
        f"Patient-wise 5-fold cross-validation on MIT-BIH DS1 ({ev.get('windows', '?')} non-overlapping 10-s "
        "windows), scored through the daemon's own inference path (`ecgd.offline.classify_recording`, "
        "quality gate on):",
        "",
        "| class | windows | Se / +P, 8-bit front end (%) | Se / +P, no front end (%) | target Se / +P (%) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label in meta["labels"]:
        pc = ev["per_class"][label]
        pc_clean = clean.get("per_class", {}).get(label)
        other = f"{_pct(pc_clean['se'])} / {_pct(pc_clean['ppv'])}" if pc_clean else "n/a"
        target = TARGETS.get(label)
        lines.append(
            f"| {label} | {pc['n']} | {_pct(pc['se'])} / {_pct(pc['ppv'])} | {other} | "
            f"{f'{target[0]} / {target[1]}' if target else '-'} |"
        )
    lines.append(f"| macro-F1 | | {ev['macro_f1']:.3f} | {clean.get('macro_f1', float('nan')):.3f} | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(model_card(), end="")
