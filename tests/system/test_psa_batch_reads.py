"""Batch reads on the PSA system API: ``GET /projects?ids=a,b,c`` answers many projects in one call."""

from __future__ import annotations

from tests.support.system import SystemApis


def project(apis: SystemApis, project_id: str) -> dict[str, object]:
    return apis.json("GET", "psa", "/projects/{project_id}", 200, path={"project_id": project_id})


def test_a_batch_read_answers_each_known_project_once_in_the_order_asked(apis: SystemApis) -> None:
    page = apis.json("GET", "psa", "/projects", 200, params={"ids": "prj_4003,prj_4001,prj_9999,prj_4001"})

    assert [p["id"] for p in page["items"]] == ["prj_4003", "prj_4001"]
    assert page["items"] == [project(apis, "prj_4003"), project(apis, "prj_4001")]
    assert page["next_cursor"] is None


def test_a_batch_read_still_applies_the_other_filters(apis: SystemApis) -> None:
    wanted = ["prj_4001", "prj_4003"]
    customer = project(apis, "prj_4001")["customer_id"]
    page = apis.json("GET", "psa", "/projects", 200, params={"ids": ",".join(wanted), "customer_id": customer})

    assert [p["id"] for p in page["items"]] == [i for i in wanted if project(apis, i)["customer_id"] == customer]
    none = apis.json("GET", "psa", "/projects", 200, params={"ids": "prj_4001", "customer_id": "cus_0000"})
    assert none["items"] == []


def test_ids_that_name_nothing_are_left_out_never_a_500(apis: SystemApis) -> None:
    hostile = ["prj_4001/../prj_4003", "prj_4001%2Fx", "prj_4001\r\nX-Evil: 1", "..", "zzz_1", "prj_" + "9" * 60]
    page = apis.json("GET", "psa", "/projects", 200, params={"ids": ",".join(hostile)})

    assert page["items"] == []


def test_a_batch_read_refuses_too_many_or_empty_ids_with_a_pointer(apis: SystemApis) -> None:
    too_many = apis.json("GET", "psa", "/projects", 400,
                         params={"ids": ",".join(f"prj_{n}" for n in range(4001, 4202))})
    empty_one = apis.json("GET", "psa", "/projects", 400, params={"ids": "prj_4001,,prj_4003"})
    too_long = apis.json("GET", "psa", "/projects", 400, params={"ids": "prj_" + "1" * 61})

    for problem in (too_many, empty_one, too_long):
        assert problem["errors"][0]["pointer"].startswith("/ids"), problem
