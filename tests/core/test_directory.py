from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.domain.directory import DirectoryError, parse_directory, read_directory_file
from bot.domain.model import StaffRole

ROOT = Path(__file__).resolve().parents[2]


def test_example_directory_has_what_the_rules_page_needs():
    d = read_directory_file(ROOT / "examples" / "directory.yaml")
    managers = {s.level: s for s in d.staff if s.role is StaffRole.MANAGER}
    assert managers[1].name == "Naïda Jelacic" and managers[1].email == "Naida.jelacic@caresolutions.be"
    assert 2 in managers
    assert len([s for s in d.staff if s.role is StaffRole.AGENT]) == 2
    with_module = [c for c in d.companies if c.support_module]
    without = [c for c in d.companies if not c.support_module]
    assert len(with_module) == 1 and len(without) == 1
    assert with_module[0].multiplier_overrides["sunday"] == Decimal("1.5")
    for company in d.companies:
        people = [c for c in d.contacts if c.company == company.name]
        assert any(p.sla_named for p in people) and any(not p.sla_named for p in people)


def test_toml_directory(tmp_path):
    path = tmp_path / "directory.toml"
    path.write_text(
        '[[companies]]\nname = "ACME"\nsupport_module = true\n'
        '[[companies.contacts]]\nname = "A"\nemail = "a@acme.be"\nsla_named = true\n'
        '[[managers]]\nname = "M"\nemail = "m@desk.be"\nlevel = 1\n'
    )
    d = read_directory_file(path)
    assert d.contacts[0].company == "ACME" and d.staff[0].level == 1


@pytest.mark.parametrize(
    "data,fragment",
    [
        ({"companies": [{"name": "A", "contacts": [{"name": "x", "email": "nope"}]}]}, "companies[0].contacts[0].email"),
        ({"companies": [{"name": "A"}, {"name": "a"}]}, "companies[1].name"),
        ({"companies": [{"name": "A", "multiplier_overrides": {"sunday": "x"}}]}, "multiplier_overrides.sunday"),
        ({"managers": [{"name": "M", "email": "m@x.be"}]}, "managers[0].level"),
        ({"agents": [{"name": "A", "email": "a@x.be"}, {"name": "B", "email": "A@X.BE"}]}, "agents[1].email"),
        ({"agents": [{"name": "A", "email": "a@x.be", "language": "de"}]}, "agents[0].language"),
        ({"customers": []}, "unknown section"),
    ],
)
def test_errors_name_the_entry(data, fragment):
    with pytest.raises(DirectoryError) as err:
        parse_directory(data)
    assert fragment in str(err.value)
