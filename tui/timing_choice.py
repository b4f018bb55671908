"""The timing mode choice of the launch dialog: exact, sampled or off, with one line that
says what the chosen one costs and keeps (the same words as `--timing`'s help)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, RadioButton, RadioSet, Static

from tracing.model.timing import Timing

HINTS = {
    Timing.EXACT: "every call timed (the default)",
    Timing.SAMPLED: "exact counts and errors; times from a sample, marked ~: cheaper",
    Timing.OFF: "counts and errors only, no latencies: cheapest",
}


class TimingChoice(Vertical):
    """Three radio buttons in a row and the chosen mode's hint below them."""

    # One line of buttons without the set's border: the dialog fits 80x24 with room to spare
    # (the focused set still shows its highlighted button).
    DEFAULT_CSS = """
    TimingChoice { height: auto; margin-top: 1; }
    TimingChoice Horizontal { height: auto; }
    TimingChoice .timing-label { padding: 0 1 0 0; }
    TimingChoice RadioSet { layout: horizontal; width: auto; height: auto; border: none;
                            padding: 0; }
    TimingChoice RadioSet:focus { border: none; }
    TimingChoice RadioSet > RadioButton { width: auto; margin-right: 2; }
    TimingChoice .timing-hint { color: $text-muted; }
    """

    def __init__(self, value: Timing = Timing.EXACT, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._value = value

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("timing", classes="timing-label")
            with RadioSet(id="timing"):
                for mode in Timing:
                    yield RadioButton(mode.value, value=mode is self._value,
                                      id=f"timing-{mode.value}")
        yield Static(HINTS[self._value], classes="timing-hint", id="timing-hint")

    @property
    def value(self) -> Timing:
        return self._value

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        button_id = event.pressed.id or ""
        self._value = Timing(button_id.removeprefix("timing-"))
        self.query_one("#timing-hint", Static).update(HINTS[self._value])
