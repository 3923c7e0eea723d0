"""The flags value, presets, risks, configuration and the per-context flags."""
from __future__ import annotations

import threading

import pytest

from shop.aspects import FlagError, Flags, PRESETS, use_flags
from shop.aspects import flags as flags_mod
from shop.config import ConfigError, Settings


def test_presets_are_the_five_phases():
    assert [(p.number, str(p.flags)) for p in PRESETS] == [
        (1, "READ_MYSQL,WRITE_MYSQL"), (2, "READ_MYSQL,WRITE_MYSQL,WRITE_DDB"),
        (3, "READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB"), (4, "READ_DDB,WRITE_MYSQL,WRITE_DDB"),
        (5, "READ_DDB,WRITE_DDB")]
    assert [p.flags.authority for p in PRESETS] == ["mysql", "mysql", "mysql", "dynamodb", "dynamodb"]
    assert all(p.flags.risks == [] and p.flags.scenario == p.name for p in PRESETS)


@pytest.mark.parametrize("text,problem", [("", "no read source"), ("WRITE_MYSQL", "no read source"),
                                          ("READ_MYSQL", "no write target"), ("READ_MYSQL,WRITE_SQL", "unknown")])
def test_impossible_or_unknown_flags_are_refused(text, problem):
    with pytest.raises(FlagError, match=problem):
        Flags.parse(text)


def test_parse_is_lenient_about_case_and_spaces_and_immutable():
    f = Flags.parse(" read_mysql , WRITE_MYSQL,write_ddb ")
    assert f == PRESETS[1].flags
    with pytest.raises(Exception):
        f.read_ddb = True


@pytest.mark.parametrize("text,risk", [
    ("READ_MYSQL,WRITE_DDB", "MySQL, which is not written"),
    ("READ_DDB,WRITE_MYSQL", "DynamoDB, which is not written"),
    ("READ_MYSQL,READ_DDB,WRITE_MYSQL", "DynamoDB, which is not written"),
])
def test_custom_mixes_state_their_risk(text, risk):
    f = Flags.parse(text)
    assert f.scenario == "custom" and any(risk in r for r in f.risks)


def test_invalid_configuration_stops_start_up(monkeypatch):
    monkeypatch.setenv("SHOP_FLAGS", "READ_MYSQL")
    with pytest.raises(ConfigError, match="SHOP_FLAGS='READ_MYSQL': impossible flags: no write target"):
        Settings.from_env()
    monkeypatch.setenv("SHOP_FLAGS", "READ_DDB,WRITE_DDB")
    monkeypatch.setenv("SHOP_DUAL_READ_MODE", "maybe")
    with pytest.raises(ConfigError, match="SHOP_DUAL_READ_MODE"):
        Settings.from_env()


def test_flags_are_per_context_and_per_thread():
    seen = {}
    with use_flags("READ_DDB,WRITE_DDB"):
        assert flags_mod.explicit() == PRESETS[4].flags
        t = threading.Thread(target=lambda: seen.setdefault("other", flags_mod.explicit()))
        t.start()
        t.join()
    assert flags_mod.explicit() is None
    assert seen["other"] is None  # a new thread routes by the server's phase, not this context's flags
