"""The MQTT topics of one cart (CONTRACT.md section 4)."""

from __future__ import annotations

from dataclasses import dataclass

FLEET_SCOPE = "_all"


@dataclass(frozen=True)
class Topics:
    prefix: str
    cart: str

    def _t(self, suffix: str, cart: str | None = None) -> str:
        return f"{self.prefix}/{cart or self.cart}/{suffix}"

    @property
    def tx(self) -> str:
        return self._t("tx")

    @property
    def ack(self) -> str:
        return self._t("tx/ack")

    @property
    def status(self) -> str:
        return self._t("status")

    @property
    def telemetry(self) -> str:
        return self._t("telemetry")

    @property
    def desired(self) -> str:
        return self._t("config/desired")

    @property
    def fleet_desired(self) -> str:
        return self._t("config/desired", FLEET_SCOPE)

    @property
    def reported(self) -> str:
        return self._t("config/reported")

    @property
    def cmd(self) -> str:
        return self._t("cmd")

    @property
    def result(self) -> str:
        return self._t("cmd/result")

    def down(self) -> list[str]:
        """What the cart subscribes to."""
        return [self.ack, self.desired, self.fleet_desired, self.cmd]
