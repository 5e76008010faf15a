"""Load a ClickHouse users.d file into a real engine (chdb) and print what the engine made of it, as JSON:
the grants, authentication and host restriction of each user it defines, and the settings of its profiles.

chdb runs every query as its built-in `default` user and cannot connect as another one, so the file's
grants are checked as the engine records them (SHOW GRANTS), not exercised. Run in a child process
(one chdb data directory per process)::

    python -m tests.support.users_config WORK_DIR USERS_XML
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

# What a server's users.xml holds before users.d files merge in: the default user, able to read all.
_BASE = """<clickhouse><profiles><default/></profiles><quotas><default/></quotas><users><default>
<password></password><profile>default</profile><quota>default</quota>
<grants><query>GRANT ALL ON *.* WITH GRANT OPTION</query></grants></default></users></clickhouse>"""


def main(work: Path, users_xml: Path) -> dict[str, Any]:
    from chdb import session

    ours = ET.parse(users_xml).getroot()
    root = ET.fromstring(_BASE)
    for section in ("profiles", "users"):
        target = root.find(section)
        assert target is not None
        for element in ours.findall(f"{section}/*"):
            target.append(element)
    ET.ElementTree(root).write(work / "users.xml")
    (work / "config.xml").write_text(f"<clickhouse><user_directories><users_xml><path>{work / 'users.xml'}"
                                     f"</path></users_xml></user_directories></clickhouse>")
    engine = session.Session(f"{work / 'data'}?config-file={work / 'config.xml'}")

    def rows(sql: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in engine.query(sql, "JSONEachRow").bytes().decode().splitlines()]

    try:
        users = [u.tag for u in ours.findall("users/*")]
        profiles = [p.tag for p in ours.findall("profiles/*")]
        return {
            "users": {name: {
                "grants": [next(iter(r.values())) for r in rows(f"SHOW GRANTS FOR `{name}`")],
                **rows("SELECT auth_type, host_ip, host_names FROM system.users WHERE name = "
                       f"'{name}'")[0]} for name in users},
            "profiles": {name: {r["setting_name"]: r for r in rows(
                "SELECT setting_name, value, min, max FROM system.settings_profile_elements "
                f"WHERE profile_name = '{name}'")} for name in profiles},
        }
    finally:
        engine.close()


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
