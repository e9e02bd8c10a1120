"""The serial panel's logic, shared by the Pico firmware (MicroPython) and the host-side tests.

Pure: no `machine`, no clocks of its own — the caller passes pin levels and milliseconds.
Protocol (CONTRACT.md): to the kiosk `P1`..`P4` and `H`; from the kiosk `L0`..`L4`, `T`, `E`.
"""

DEBOUNCE_MS = 30
HEARTBEAT_MS = 2000
THANKS_MS = 1500
FAULT_MS = 5000
BEEP_MS = 200


class PanelLogic:
    def __init__(self, buttons=4):
        self.buttons = buttons
        self.stable = [1] * buttons  # pull-up: 1 = released
        self.changed_at = [0] * buttons
        self.raw = [1] * buttons
        self.last_heartbeat = None
        self.lamps = [0] * buttons
        self.buzzer = 0
        self.mode = "idle"  # idle | thanks | fault
        self.mode_until = 0
        self.unknown = 0

    def sample(self, levels, now_ms):
        """Pin levels (1 released, 0 pressed) → lines to send. One line per press, not per bounce."""
        out = []
        for i in range(self.buttons):
            level = levels[i]
            if level != self.raw[i]:
                self.raw[i] = level
                self.changed_at[i] = now_ms
            elif level != self.stable[i] and now_ms - self.changed_at[i] >= DEBOUNCE_MS:
                self.stable[i] = level
                if level == 0:
                    out.append("P%d" % (i + 1))
        if self.last_heartbeat is None or now_ms - self.last_heartbeat >= HEARTBEAT_MS:
            self.last_heartbeat = now_ms
            out.append("H")
        return out

    def command(self, line, now_ms):
        """A line from the kiosk; unknown lines are counted and ignored."""
        line = line.strip()
        if len(line) == 2 and line[0] == "L" and line[1] in "01234":
            n = int(line[1])
            self.lamps = [1 if i + 1 == n else 0 for i in range(self.buttons)]
        elif line == "T":
            self.mode, self.mode_until = "thanks", now_ms + THANKS_MS
            self.buzzer = 1
        elif line == "E":
            self.mode, self.mode_until = "fault", now_ms + FAULT_MS
        elif line:
            self.unknown += 1

    def outputs(self, now_ms):
        """(lamp levels, buzzer level) to drive now."""
        if self.mode != "idle" and now_ms >= self.mode_until:
            self.mode = "idle"
            self.lamps = [0] * self.buttons
        if self.mode == "thanks":
            self.buzzer = 1 if now_ms < self.mode_until - THANKS_MS + BEEP_MS else 0  # a short beep at the start
            return list(self.lamps), self.buzzer
        if self.mode == "fault":
            blink = (now_ms // 250) % 2
            return [blink] * self.buttons, blink
        return list(self.lamps), 0
