"""The out-of-tree peft type of MEMOIR.

peft's `PeftType` enum cannot grow, but its lookups are plain dicts keyed by the enum's string
values; a str-Enum member with value "MEMOIR" hashes like that string, so configs saved with
`"peft_type": "MEMOIR"` resolve to our classes once they are registered.
"""

import enum


class MemoirPeftType(str, enum.Enum):
    MEMOIR = "MEMOIR"
