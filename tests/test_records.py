"""Recordings: the small WFDB reader agrees with the reference ``wfdb`` package; CSV/.npy; clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO_RECORD, shared_record

from ecgd.io.records import RecordError, RecordNotFound, read_recording, read_wfdb

wfdb = pytest.importorskip("wfdb")


def reference(header: Path, channel: int) -> np.ndarray:
    rec = wfdb.rdrecord(str(header.with_suffix("")), channels=[channel], physical=True)
    return rec.p_signal[:, 0]


def write_header(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- agreement with wfdb --------------------------------------------------------------------------


def test_bundled_excerpt_matches_wfdb(demo_recording):
    ref = wfdb.rdrecord(str(DEMO_RECORD.with_suffix("")))
    assert demo_recording.fs == ref.fs == 360
    assert demo_recording.name == "mitdb201_excerpt"
    assert demo_recording.channel_name == "MLII" == ref.sig_name[0]
    assert demo_recording.mv.shape == (ref.sig_len,) == (108000,)
    assert np.array_equal(demo_recording.mv, ref.p_signal[:, 0])
    assert np.abs(demo_recording.mv).max() < 10  # millivolts, not ADC units


@pytest.mark.parametrize("channel", [0, 1])
def test_mitdb_212_two_signals_match_wfdb(channel):
    header = shared_record("mitdb/101")
    rec = read_recording(header, channel=channel)
    ref = reference(header, channel)
    assert rec.fs == 360.0
    assert rec.channel_name == ("MLII", "V1")[channel]
    assert rec.mv.shape == ref.shape == (650000,)
    assert np.array_equal(rec.mv, ref)


def test_record_path_without_extension_reads_the_same():
    header = shared_record("mitdb/101")
    a = read_recording(header.with_suffix(""), channel=1)
    b = read_wfdb(header, channel=1)
    assert np.array_equal(a.mv, b.mv)
    assert a.name == "101"


def test_format_16_written_by_wfdb_reads_back(tmp_path):
    rng = np.random.default_rng(3)
    d = rng.integers(-32000, 32000, size=(1001, 3)).astype(np.int32)
    d[0] = [-32768 + 1, 32767, 0]
    wfdb.wrsamp(
        "r16",
        fs=250,
        units=["mV", "mV", "mV"],
        sig_name=["I", "II", "V5"],
        d_signal=d,
        fmt=["16", "16", "16"],
        adc_gain=[200.0, 1000.0, 12.5],
        baseline=[0, -300, 77],
        write_dir=str(tmp_path),
    )
    header = tmp_path / "r16.hea"
    for ch, (gain, base) in enumerate([(200.0, 0), (1000.0, -300), (12.5, 77)]):
        rec = read_recording(header, channel=ch)
        assert rec.fs == 250.0 and rec.channel_name == ["I", "II", "V5"][ch]
        assert np.allclose(rec.mv, (d[:, ch] - base) / gain, rtol=0, atol=1e-12)
        assert np.allclose(rec.mv, reference(header, ch), rtol=0, atol=1e-9)


ODD_212_BUG = (
    "BUG ecgd/io/records.py _read_samples (line ~134): format 212 stores an odd final sample in 2 bytes "
    "(wfdb writes 1499 bytes for 999 samples); the reader drops the incomplete 3-byte group and refuses "
    "the record as 'truncated: 998 of 999 samples' (wfdb.rdrecord reads all 999)"
)


@pytest.mark.parametrize("n_samples", [999, 1000])
def test_format_212_with_negative_values_and_odd_length_matches_wfdb(tmp_path, n_samples):
    rng = np.random.default_rng(n_samples)
    d = rng.integers(-2047, 2048, size=(n_samples, 1)).astype(np.int32)
    d[:4, 0] = [-2047, 2047, -1, 0]
    wfdb.wrsamp(
        "r212",
        fs=360,
        units=["mV"],
        sig_name=["MLII"],
        d_signal=d,
        fmt=["212"],
        adc_gain=[200.0],
        baseline=[1024],
        write_dir=str(tmp_path),
    )
    rec = read_recording(tmp_path / "r212.hea")
    assert rec.mv.shape == (n_samples,)
    assert np.allclose(rec.mv, (d[:, 0] - 1024) / 200.0, rtol=0, atol=1e-12)
    assert np.allclose(rec.mv, reference(tmp_path / "r212.hea", 0), rtol=0, atol=1e-9)


def test_signals_in_separate_files_are_read_from_their_own_file(tmp_path):
    a = np.array([1, 2, 3, -4], dtype="<i2")
    b = np.array([100, 200, 300, 400], dtype="<i2")
    a.tofile(tmp_path / "a.dat")
    b.tofile(tmp_path / "b.dat")
    write_header(
        tmp_path / "two.hea",
        "two 2 100 4\na.dat 16 10/mV 16 0 1 0 0 lead_a\nb.dat 16 100(50)/mV 16 0 100 0 0 lead_b\n",
    )
    assert read_recording(tmp_path / "two.hea", 0).mv.tolist() == [0.1, 0.2, 0.3, -0.4]
    rec_b = read_recording(tmp_path / "two.hea", 1)
    assert rec_b.mv.tolist() == [0.5, 1.5, 2.5, 3.5]
    assert rec_b.channel_name == "lead_b"


def test_header_defaults_gain_0_means_200_and_adc_zero_is_the_baseline(tmp_path):
    np.array([200, 400, 600, 0], dtype="<i2").tofile(tmp_path / "g.dat")
    write_header(tmp_path / "g.hea", "# comment line\n\ng 1 500\ng.dat 16 0 16 200\n")
    rec = read_recording(tmp_path / "g.hea")
    assert rec.fs == 500.0
    assert rec.mv.tolist() == [0.0, 1.0, 2.0, -1.0]  # (adu - adc_zero 200) / 200
    assert rec.channel_name == ""
    np.array([200, 400], dtype="<i2").tofile(tmp_path / "h.dat")
    write_header(tmp_path / "h.hea", "h 1\nh.dat 16\n")  # no rate: WFDB default 250 Hz; gain 200
    rec = read_recording(tmp_path / "h.hea")
    assert rec.fs == 250.0 and rec.mv.tolist() == [1.0, 2.0]


def test_format_with_byte_offset_is_honoured_or_refused(tmp_path):
    d = np.array([[1, -2], [300, -400], [5, 6], [-32000, 32000]], dtype=np.int32)
    wfdb.wrsamp(
        "r",
        fs=250,
        units=["mV", "mV"],
        sig_name=["a", "b"],
        d_signal=d,
        fmt=["16", "16"],
        adc_gain=[100.0, 50.0],
        baseline=[10, -20],
        write_dir=str(tmp_path),
    )
    (tmp_path / "off.dat").write_bytes(b"\x07" * 6 + (tmp_path / "r.dat").read_bytes())
    text = (tmp_path / "r.hea").read_text().replace("r.dat 16", "off.dat 16+6").replace("r ", "off ", 1)
    header = write_header(tmp_path / "off.hea", text)
    expected = reference(header, 0)
    assert np.allclose(expected, (d[:, 0] - 10) / 100.0)  # the reference honours the offset
    try:
        rec = read_recording(header, 0)
    except RecordError as exc:
        assert "offset" in str(exc)
    else:
        assert np.allclose(rec.mv, expected)


# --- WFDB errors ---------------------------------------------------------------------------------


def test_missing_header_is_record_not_found_naming_the_file(tmp_path):
    with pytest.raises(RecordNotFound, match=r"nothing\.hea: no such record header"):
        read_recording(tmp_path / "nothing.hea")
    with pytest.raises(RecordNotFound, match=r"nothing\.hea: no such record header"):
        read_recording(tmp_path / "nothing")


def test_unreadable_header_is_a_record_error(tmp_path):
    (tmp_path / "dir.hea").mkdir()
    with pytest.raises(RecordError, match=r"dir\.hea: cannot read header") as info:
        read_recording(tmp_path / "dir.hea")
    assert not isinstance(info.value, RecordNotFound)


def test_missing_signal_file_is_record_not_found(tmp_path):
    write_header(tmp_path / "m.hea", "m 1 360 10\nm.dat 212 200 11 1024\n")
    with pytest.raises(RecordNotFound, match=r"m\.dat: signal file not found"):
        read_recording(tmp_path / "m.hea")


@pytest.mark.parametrize("name", ["gone.csv", "gone.npy"])
def test_missing_csv_or_npy_is_record_not_found(tmp_path, name):
    with pytest.raises(RecordNotFound, match=rf"{name}: no such file"):
        read_recording(tmp_path / name, fs=360)


def test_truncated_signal_file_is_refused(tmp_path):
    d = np.arange(100, dtype=np.int32).reshape(-1, 1)
    wfdb.wrsamp(
        "t",
        fs=360,
        units=["mV"],
        sig_name=["x"],
        d_signal=d,
        fmt=["212"],
        adc_gain=[200.0],
        baseline=[0],
        write_dir=str(tmp_path),
    )
    dat = tmp_path / "t.dat"
    dat.write_bytes(dat.read_bytes()[:60])  # 40 samples of 100
    with pytest.raises(RecordError, match=r"t\.dat: truncated: 40 of 100 samples"):
        read_recording(tmp_path / "t.hea")


def test_unsupported_format_is_refused(tmp_path):
    (tmp_path / "u.dat").write_bytes(b"\0" * 64)
    write_header(tmp_path / "u.hea", "u 1 360 10\nu.dat 516 200/mV 16 0 0 0 0 x\n")  # FLAC-compressed
    with pytest.raises(RecordError, match=r"WFDB format 516 is not supported \(8, 16, 24, 32, 61, 80"):
        read_recording(tmp_path / "u.hea")


# --- every format and header form PhysioNet uses, against wfdb.rdrecord --------------------------

FORMAT_RANGES = {
    "8": (-100, 100),  # first differences must fit in a byte
    "16": (-32767, 32767),
    "24": (-(1 << 23) + 1, (1 << 23) - 1),
    "32": (-(1 << 31) + 1, (1 << 31) - 1),
    "61": (-32767, 32767),
    "80": (-127, 127),
    "160": (-32767, 32767),
    "212": (-2047, 2047),
    "310": (-511, 511),
    "311": (-511, 511),
}


def encode(d: np.ndarray, fmt: str) -> bytes:
    """Our own encoder of WFDB's signal formats (signal(5)), independent of both readers."""
    flat = d.reshape(-1).astype(np.int64)
    if fmt == "8":
        return np.diff(d, axis=0, prepend=d[:1] * 0).reshape(-1).astype(np.int8).tobytes()
    if fmt in ("16", "61", "80", "160", "24", "32"):
        if fmt == "24":
            u = flat & 0xFFFFFF
            return np.stack([u & 0xFF, (u >> 8) & 0xFF, u >> 16], axis=1).astype(np.uint8).tobytes()
        dtype = {"16": "<i2", "61": ">i2", "80": "u1", "160": "<u2", "32": "<i4"}[fmt]
        shift = {"80": 128, "160": 32768}.get(fmt, 0)
        return (flat + shift).astype(dtype).tobytes()
    out = bytearray()
    if fmt == "212":
        for i in range(0, flat.size, 2):
            a = int(flat[i]) & 0xFFF
            if i + 1 == flat.size:
                out += bytes([a & 0xFF, a >> 8])
                break
            b = int(flat[i + 1]) & 0xFFF
            out += bytes([a & 0xFF, (a >> 8) | ((b >> 8) << 4), b & 0xFF])
        return bytes(out)
    for i in range(0, flat.size, 3):
        g = [int(x) & 0x3FF for x in flat[i : i + 3]]
        k = len(g)
        g += [0] * (3 - k)
        if fmt == "310":
            w0 = (g[0] << 1) | ((g[2] & 0x1F) << 11)
            w1 = (g[1] << 1) | ((g[2] >> 5) << 11)
            group = w0.to_bytes(2, "little") + w1.to_bytes(2, "little")
            out += group[: {1: 2, 2: 4, 3: 4}[k]]
        else:
            w = g[0] | (g[1] << 10) | (g[2] << 20)
            out += w.to_bytes(4, "little")[: {1: 2, 2: 3, 3: 4}[k]]
    return bytes(out)


@pytest.mark.parametrize("n", [1000, 1001, 1003])  # every way a packed group can end
@pytest.mark.parametrize("fmt", sorted(FORMAT_RANGES, key=int))
def test_every_format_reads_as_wfdb_reads_it(tmp_path, fmt, n):
    rng = np.random.default_rng(int(fmt) + n)
    lo, hi = FORMAT_RANGES[fmt]
    if fmt == "8":
        d = 40 + np.cumsum(rng.integers(-100, 101, size=(n, 2)), axis=0).astype(np.int64)
        d = np.clip(d, -(1 << 20), 1 << 20)
    else:
        d = rng.integers(lo, hi, size=(n, 2), endpoint=True).astype(np.int64)
        d[5, 0], d[6, 1] = lo, hi  # the extremes
    (tmp_path / "f.dat").write_bytes(encode(d, fmt))
    init = [int(d[0, 0]), int(d[0, 1])] if fmt != "8" else [0, 0]
    write_header(
        tmp_path / "f.hea",
        f"f 2 500 {n}\n"
        f"f.dat {fmt} 200(3)/mV 12 0 {init[0]} 0 0 I\n"
        f"f.dat {fmt} 1000(-7)/mV 12 0 {init[1]} 0 0 II\n",
    )
    ref_d = wfdb.rdrecord(str(tmp_path / "f"), physical=False, return_res=64).d_signal
    np.testing.assert_array_equal(ref_d, d)  # our encoder wrote what the reference reads
    for channel in (0, 1):
        rec = read_recording(tmp_path / "f.hea", channel)
        ref = reference(tmp_path / "f.hea", channel)
        assert rec.fs == 500 and rec.mv.shape == (n,)
        np.testing.assert_allclose(rec.mv, ref, rtol=0, atol=1e-9)


def test_invalid_samples_are_nan_as_wfdb_reads_them(tmp_path):
    d = np.array([[1], [-32768], [3]], dtype=np.int64)
    wfdb.wrsamp(
        "g",
        fs=250,
        units=["mV"],
        sig_name=["x"],
        d_signal=d,
        fmt=["16"],
        adc_gain=[100.0],
        baseline=[0],
        write_dir=str(tmp_path),
    )
    rec = read_recording(tmp_path / "g.hea")
    ref = reference(tmp_path / "g.hea", 0)
    assert np.isnan(rec.mv[1]) and np.isnan(ref[1]) and rec.mv[2] == ref[2] == 0.03


def test_a_physionet_2017_mat_record_with_a_byte_offset_reads(tmp_path):
    """``A00001.mat 16+24 1000/mV 16 0 -127 0 0 ECG``: a MATLAB v4 file whose 24-byte header is
    skipped by the byte offset (PhysioNet/CinC Challenge 2017), CRLF line ends, no date."""
    rng = np.random.default_rng(7)
    d = rng.integers(-2000, 2000, size=(9000, 1)).astype(np.int64)
    wfdb.wrsamp(
        "A00001",
        fs=300,
        units=["mV"],
        sig_name=["ECG"],
        d_signal=d,
        fmt=["16"],
        adc_gain=[1000.0],
        baseline=[0],
        write_dir=str(tmp_path),
    )
    mat_header = b"\0" * 24  # stands for the MAT v4 matrix header (type, rows, cols, imag, name length)
    (tmp_path / "A00001.mat").write_bytes(mat_header + (tmp_path / "A00001.dat").read_bytes())
    (tmp_path / "A00001.dat").unlink()
    header = "A00001 1 300 9000 05:05:15 1/05/2000\r\nA00001.mat 16+24 1000/mV 16 0 -127 0 0 ECG\r\n"
    (tmp_path / "A00001.hea").write_bytes(header.encode())
    rec = read_recording(tmp_path / "A00001.hea")
    ref = reference(tmp_path / "A00001.hea", 0)
    assert rec.fs == 300 and rec.channel_name == "ECG"
    np.testing.assert_array_equal(rec.mv, ref)
    np.testing.assert_allclose(rec.mv, d[:, 0] / 1000.0)


@pytest.mark.parametrize("layout", ["fixed", "variable"])
def test_multi_segment_records_read_as_wfdb_reads_them(tmp_path, layout):
    rng = np.random.default_rng(11)
    parts = []
    for i, n in enumerate((700, 500)):
        d = rng.integers(-500, 500, size=(n, 1)).astype(np.int64)
        parts.append(d)
        wfdb.wrsamp(
            f"s{i}",
            fs=250,
            units=["mV"],
            sig_name=["ECG"],
            d_signal=d,
            fmt=["212"],
            adc_gain=[200.0 * (i + 1)],
            baseline=[i],
            write_dir=str(tmp_path),
        )
    if layout == "fixed":
        text = "m/2 1 250 1200\ns0 700\ns1 500\n"
    else:
        (tmp_path / "m_layout.hea").write_text("m_layout 1 250 0\n~ 212 200/mV 12 0 0 0 0 ECG\n")
        text = "m/4 1 250 1500 10:00:00 01/02/2026\nm_layout 0\ns0 700\n~ 300\ns1 500\n"
    write_header(tmp_path / "m.hea", text)
    rec = read_recording(tmp_path / "m.hea")
    ref = wfdb.rdrecord(str(tmp_path / "m")).p_signal[:, 0]
    np.testing.assert_array_equal(np.isnan(rec.mv), np.isnan(ref))
    np.testing.assert_allclose(rec.mv, ref, equal_nan=True)
    assert rec.mv.size == (1200 if layout == "fixed" else 1500)


def test_bad_headers_are_record_errors(tmp_path):
    np.zeros(4, dtype="<i2").tofile(tmp_path / "x.dat")
    cases = {
        "empty": ("# only a comment\n", "empty header"),
        "noint": ("x two 360\n", "bad record line"),
        "badsig": ("x 1 360 4\nx.dat sixteen 200\n", "bad signal line"),
        "badgain": ("x 1 360 4\nx.dat 16 abc/mV\n", "bad signal line"),
    }
    for name, (text, message) in cases.items():
        with pytest.raises(RecordError, match=message):
            read_recording(write_header(tmp_path / f"{name}.hea", text))


def test_channel_out_of_range_and_mixed_formats(tmp_path):
    np.zeros(8, dtype="<i2").tofile(tmp_path / "x.dat")
    write_header(tmp_path / "one.hea", "one 1 360 4\nx.dat 16 200 16 0\n")
    with pytest.raises(RecordError, match="no channel 1 \\(record has 1\\)"):
        read_recording(tmp_path / "one.hea", channel=1)
    write_header(tmp_path / "mix.hea", "mix 2 360 2\nx.dat 16 200\nx.dat 212 200\n")
    with pytest.raises(RecordError, match="mixed formats"):
        read_recording(tmp_path / "mix.hea")


def test_record_errors_are_value_errors():
    assert issubclass(RecordError, ValueError)
    assert issubclass(RecordNotFound, RecordError)


# --- CSV and .npy ---------------------------------------------------------------------------------


def test_csv_without_a_rate_is_refused(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("0.1\n0.2\n")
    with pytest.raises(RecordError, match=r"x\.csv: the sample rate .* must be given"):
        read_recording(p)


def test_csv_single_column_multi_column_header_and_comments(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("# exported by a test\n0.5\n-1.25\n2\n")
    rec = read_recording(one, fs=128)
    assert rec.mv.tolist() == [0.5, -1.25, 2.0] and rec.fs == 128.0
    assert rec.name == "one" and rec.channel_name == "column 0"
    multi = tmp_path / "multi.csv"
    multi.write_text("lead_i,lead_ii\n0.1,1.1\n0.2,1.2\n0.3,1.3\n")
    rec = read_recording(multi, channel=1, fs=250)
    assert rec.mv.tolist() == [1.1, 1.2, 1.3] and rec.channel_name == "column 1"
    with pytest.raises(RecordError, match="no channel 2 in data of shape \\(3, 2\\)"):
        read_recording(multi, channel=2, fs=250)


def test_npy_one_and_two_dimensional(tmp_path):
    x = np.linspace(-1, 1, 50)
    np.save(tmp_path / "a.npy", x)
    rec = read_recording(tmp_path / "a.npy", fs=360)
    assert np.array_equal(rec.mv, x) and rec.mv.dtype == np.float64
    both = np.stack([x, 2 * x], axis=1).astype(np.float32)
    np.save(tmp_path / "b.npy", both)
    rec = read_recording(tmp_path / "b.npy", channel=1, fs=360)
    assert np.allclose(rec.mv, 2 * x, atol=1e-6)
    rec.mv[0] = 99.0  # a copy: the caller may modify it
    assert read_recording(tmp_path / "b.npy", channel=1, fs=360).mv[0] != 99.0
    with pytest.raises(RecordError, match="sample rate"):
        read_recording(tmp_path / "a.npy")
    np.save(tmp_path / "c.npy", np.zeros((2, 2, 2)))
    with pytest.raises(RecordError, match="no channel"):
        read_recording(tmp_path / "c.npy", fs=1)
