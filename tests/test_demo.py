"""The README's demo command stays true: it runs the real daemon on the simulators, offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_demo_walks_through_the_day() -> None:
    out = subprocess.run([sys.executable, "-m", "agent.demo"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "投递模式" in text                                   # courier deposit mode
    assert "号柜门已打开" in text and "取件凭条" in text         # pick-up and its receipt
    assert "李奶奶" in text and "红烧肉" in text                 # the meal receipt
    assert "政务服务 2 号" in text                               # two tickets
    assert "此二维码已于" in text                               # the replay refused
    assert "签名错误" in text and "无法识别" in text             # forged and garbage refused
    assert "pending" in text and "last sync never" in text      # offline-first
    assert '{"agent_exit": 0}' in text
