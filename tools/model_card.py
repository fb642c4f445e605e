"""Print the README's model figures (markdown) from the bundled model's metadata.

The metadata holds the cross-validated evaluation written by training/train.py --ship, so README's
table can only show what the shipped model measured; tests/test_readme.py checks that they agree.
"""

from __future__ import annotations

import json

from ecgd.config import BUNDLED_MODEL

TARGETS = {"N": (95, 95), "S": (60, 60), "V": (90, 90), "AF": (85, 85)}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def model_card() -> str:
    meta = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())
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
