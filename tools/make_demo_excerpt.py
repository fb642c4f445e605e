"""Cut the bundled demo excerpt from MIT-BIH record 201 (developer tool; needs the wfdb package).

Minutes 4:30–9:30 of record 201, lead MLII: atrial fibrillation, nodal and normal
sinus rhythm with ventricular and atrial ectopic beats, in five minutes.
Usage: python tools/make_demo_excerpt.py [/path/to/mitdb]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import wfdb

START_S, LENGTH_S = 270, 300
OUT = Path(__file__).resolve().parents[1] / "ecgd" / "demo"


def main() -> None:
    mitdb = Path(
        sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data/mitdb"
    )
    rec = wfdb.rdrecord(str(mitdb / "201"), channels=[0], physical=False)
    fs = int(rec.fs)
    a, b = START_S * fs, (START_S + LENGTH_S) * fs
    name = "mitdb201_excerpt"
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"],
        sig_name=["MLII"],
        d_signal=rec.d_signal[a:b],
        fmt=["212"],
        adc_gain=rec.adc_gain,
        baseline=rec.baseline,
        write_dir=str(OUT),
        comments=[
            f"MIT-BIH Arrhythmia Database record 201, {START_S}-{START_S + LENGTH_S} s, lead MLII",
            "ODC-By 1.0; see README.md in this folder",
        ],
    )
    ann = wfdb.rdann(str(mitdb / "201"), "atr", sampfrom=a, sampto=b - 1, shift_samps=True)
    wfdb.wrann(
        name,
        "atr",
        np.asarray(ann.sample),
        np.asarray(ann.symbol),
        aux_note=ann.aux_note,
        fs=fs,
        write_dir=str(OUT),
    )


if __name__ == "__main__":
    main()
