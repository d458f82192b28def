"""Speech through espeak-ng (Debian package espeak-ng; `-v cmn` is its Mandarin voice).

The text goes in on stdin, never as an argument: words from a token cannot become options.
The same prompt is spoken often (a busy lunch hour is twenty "A 零 三 号柜门已打开"), so the
last few renderings are kept.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache

from agent.devices.audio import wav

VOICES = {"zh": "cmn", "en": "en"}
# espeak-ng's rate is words a minute; its Mandarin takes each character for a word, so 175
# is about 2.4 syllables a second, slower than anyone speaks. Mandarin at 200 (~2.7/s) and
# English at 150 are both a calm pace for elderly listeners.
RATE = {"zh": 200, "en": 150}
TIMEOUT_S = 10.0


class SpeechError(Exception):
    """The speech engine is missing or failed; tones still play."""


def available() -> bool:
    return shutil.which("espeak-ng") is not None


@lru_cache(maxsize=64)
def synthesize(text: str, lang: str, volume: int) -> tuple[bytes, int]:
    """(pcm, rate) of `text` spoken in `lang` at `volume` (0-100)."""
    voice = VOICES.get(lang)
    if voice is None:
        raise SpeechError(f"no voice for language {lang!r}")
    # espeak-ng's amplitude is 0-200 with 100 its normal level; volume 100 is that level.
    cmd = ["espeak-ng", "-v", voice, "-s", str(RATE[lang]), "-a", str(volume),
           "--stdin", "--stdout"]
    try:
        done = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True,
                              timeout=TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise SpeechError("espeak-ng is not installed (Debian package espeak-ng)") from None
    except subprocess.TimeoutExpired:
        raise SpeechError(f"espeak-ng took over {TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
        raise SpeechError(f"espeak-ng failed ({done.returncode}): {last[0][:200]}")
    try:
        pcm, rate, _ = wav.decode(done.stdout)
    except wav.WavError as exc:
        raise SpeechError(f"espeak-ng gave no usable audio: {exc}") from None
    return pcm, rate
