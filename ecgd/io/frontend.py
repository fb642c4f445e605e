"""Model of the analog chain between the electrodes and the ADC codes.

One module describes the AD8232 module + PCF8591 chain so that the emulated
device, the offline ``classify --frontend pcf8591`` path, the daemon's
counts→millivolt conversion and model training all agree on what the device
delivers.  The filters are the AD8232 board's analog responses applied in the
frequency domain (exact, vectorised, no SciPy needed at run time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SQRT2 = float(np.sqrt(2.0))


@dataclass(frozen=True)
class AnalogFrontEnd:
    """AD8232 amplifier + ADC parameters (defaults: SparkFun-style AD8232 board, PCF8591 at 3.3 V)."""

    gain: float = 1100.0  # V/V, electrodes → AD8232 OUT
    offset_volts: float = 1.65  # AD8232 REFOUT (mid-supply): OUT for 0 mV input
    highpass_hz: float = 0.5  # two-pole high-pass of the board (0 disables)
    lowpass_hz: float = 40.0  # two-pole low-pass of the board (0 disables)
    adc_reference_volts: float = 3.3  # PCF8591 VREF − AGND
    adc_bits: int = 8

    @property
    def adc_max(self) -> int:
        return (1 << self.adc_bits) - 1

    @property
    def lsb_volts(self) -> float:
        # PCF8591 datasheet: V_LSB = (VREF - VAGND) / 256 for the 8-bit converter.
        return self.adc_reference_volts / (1 << self.adc_bits)

    def filter_mv(self, mv: np.ndarray, fs: float) -> np.ndarray:
        """The board's band-pass applied to a whole signal (reflect-padded to limit edge effects)."""
        x = np.asarray(mv, dtype=np.float64)
        if x.size == 0 or (self.highpass_hz <= 0 and self.lowpass_hz <= 0):
            return x.copy()
        pad = min(x.size - 1, int(5 * fs))
        padded = np.pad(x, pad, mode="reflect") if pad > 0 else x
        n = 1 << int(np.ceil(np.log2(padded.size)))  # power of two: fast FFT, zero tail absorbs wrap
        mean = padded.mean()  # filtered apart: zero padding must not meet a DC step
        spectrum = np.fft.rfft(padded - mean, n)
        spectrum *= self.response(np.fft.rfftfreq(n, 1.0 / fs))
        y = np.fft.irfft(spectrum, n)[: padded.size]
        dc_gain = 0.0 if self.highpass_hz > 0 else 1.0
        return y[pad : pad + x.size] + mean * dc_gain

    def response(self, freqs_hz: np.ndarray) -> np.ndarray:
        """Complex analog response H(j f) of the board's two-pole Butterworth filters."""
        s = 1j * np.asarray(freqs_hz, dtype=np.float64)
        h = np.ones_like(s)
        if self.highpass_hz > 0:
            x = s / self.highpass_hz
            h *= x**2 / (x**2 + _SQRT2 * x + 1.0)
        if self.lowpass_hz > 0:
            x = s / self.lowpass_hz
            h *= 1.0 / (x**2 + _SQRT2 * x + 1.0)
        return h

    def mv_to_volts(self, mv: np.ndarray) -> np.ndarray:
        """Electrode millivolts (already band-limited) → AD8232 output, clipped at the supply rails."""
        volts = self.offset_volts + self.gain * np.asarray(mv, dtype=np.float64) / 1000.0
        return np.clip(volts, 0.0, self.adc_reference_volts)

    def volts_to_counts(self, volts: np.ndarray | float) -> np.ndarray:
        """Ideal ADC: floor(V / V_LSB), saturating at 0 and full scale."""
        codes = np.floor(np.asarray(volts, dtype=np.float64) / self.lsb_volts)
        return np.clip(codes, 0, self.adc_max).astype(np.int16)

    def counts_to_mv(self, counts: np.ndarray) -> np.ndarray:
        """ADC codes → electrode millivolts (code centre): the daemon's input conversion."""
        scale = self.lsb_volts * 1000.0 / self.gain
        base = (0.5 * self.lsb_volts - self.offset_volts) * 1000.0 / self.gain
        return (np.asarray(counts, dtype=np.float32) * np.float32(scale) + np.float32(base)).astype(
            np.float32, copy=False
        )

    def simulate_counts(self, mv: np.ndarray, fs: float) -> np.ndarray:
        """Whole chain, electrodes → ADC codes, for offline use and training."""
        return self.volts_to_counts(self.mv_to_volts(self.filter_mv(mv, fs)))

    def simulate_mv(self, mv: np.ndarray, fs: float) -> np.ndarray:
        """What the daemon reconstructs from the device: the chain and back to millivolts."""
        return self.counts_to_mv(self.simulate_counts(mv, fs))
