"""Print the configuration reference (markdown) from the schema in ecgd/config.py.

README's table is this output; tests/test_readme.py checks that they agree.
"""

from __future__ import annotations

from ecgd import config as cfg


def reference() -> str:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for section, cls in cfg.SECTIONS.items():
        for key, f in cfg.leaves(cls):
            help_text = f.metadata.get("help") or cfg.STAGE_HELP.get(section, {}).get(f.name, "")
            default = f.default
            shown = (
                "null" if default is None else str(default).lower() if isinstance(default, bool) else default
            )
            if section == "device" and f.name == "address":
                shown = f"0x{default:02x}"
            rows.append(f"| `{section}.{key}` | `{shown}` | {help_text} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
