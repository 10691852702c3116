"""glidemed.toml_lines: the line of each key path a study problem names."""

from __future__ import annotations

import tomllib

from glidemed.toml_lines import key_lines, line_of

TEXT = '''# comment
id = "x"
instructions = """
fake = "a key inside a string"
[not.a.table]
"""
"quoted key" = 1

[[conditions]]
name = "a"
params = { size = 32 }

[[conditions]]
name = "b"

[conditions.params]
size = 64

[survey]
task = "ratings"

[[survey.profile]]
key = "years"

[[survey.profile]]
key = "site"
'''


def test_every_written_key_has_its_line():
    tomllib.loads(TEXT)  # the fixture is valid TOML
    lines = key_lines(TEXT)
    assert lines["id"] == 2 and lines["instructions"] == 3 and lines["quoted key"] == 7
    assert "fake" not in lines and "not.a.table" not in lines  # inside a multi-line string
    assert lines["conditions[0].name"] == 10 and lines["conditions[1].name"] == 14
    assert lines["conditions[1].params.size"] == 17
    assert lines["survey.task"] == 20
    assert lines["survey.profile[0].key"] == 23 and lines["survey.profile[1].key"] == 26


def test_an_unwritten_key_gets_the_line_of_its_nearest_parent():
    lines = key_lines(TEXT)
    assert line_of(lines, "conditions[0].params.size") == 11  # inside an inline table
    assert line_of(lines, "conditions[1].generator") == 13  # missing: its table's header
    assert line_of(lines, "survey.profile[1].label") == 25
    assert line_of(lines, "styles[0].template") is None
