"""Image URIs per tag: one account/region table per SageMaker tag.

The tables come from the SageMaker Python SDK's ``sagemaker-tritonserver.json``; a copy
of it (tests/data/sagemaker-python-sdk/, with its commit) is compared with every (tag,
region) account here. The SDK's facts: 26 regions up to 24.09, nine more in 25.04, then
ap-southeast-6 and no China region in 25.09 and 26.05.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tritonship.errors import UsageError
from tritonship.sagemaker.image_registries import REGISTRIES
from tritonship.sagemaker.images import SAGEMAKER_VERSIONS, image_uri
from tritonship.sagemaker.serve import ServeRefused, serve_args

ADDED_IN_25_04 = {
    "ap-east-2",
    "ap-south-2",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "eu-central-2",
    "eu-south-2",
    "me-central-1",
    "mx-central-1",
}
CHINA = {"cn-north-1", "cn-northwest-1"}


SDK = Path(__file__).resolve().parents[2] / "data" / "sagemaker-python-sdk"


@pytest.mark.parametrize(
    "snapshot", ["sagemaker-tritonserver.json", "sagemaker-tritonserver.master-v2.json"]
)
def test_every_tag_and_region_has_the_sdks_account(snapshot: str) -> None:
    versions = json.loads((SDK / snapshot).read_text(encoding="utf-8"))["versions"]
    sdk = {
        (version, region): account
        for version, entry in versions.items()
        for region, account in entry["registries"].items()
    }
    ours = {
        (version, region): account
        for version, table in REGISTRIES.items()
        if version in versions
        for region, account in table.items()
    }
    assert {key: ours.get(key) for key in sdk if ours.get(key) != sdk[key]} == {}
    assert sorted(set(ours) - set(sdk)) == []
    for version, entry in versions.items():
        assert entry["repository"] == "sagemaker-tritonserver"
        assert entry["tag_prefix"] == f"{version}-py3"
    if snapshot == "sagemaker-tritonserver.json":  # the newest: every tag we know
        assert set(versions) == set(REGISTRIES)
    for (version, region), account in sdk.items():
        uri = image_uri(region, f"{version}-py3")
        assert uri.startswith(f"{account}.dkr.ecr.{region}.amazonaws.com"), (version, region)


def test_one_table_per_tag_with_the_sdk_region_counts() -> None:
    counts = {version: len(table) for version, table in REGISTRIES.items()}
    assert counts == {
        "23.12": 26,
        "24.01": 26,
        "24.03": 26,
        "24.05": 26,
        "24.09": 26,
        "25.04": 35,
        "25.09": 34,
        "26.05": 34,
    }
    assert set(SAGEMAKER_VERSIONS) == set(REGISTRIES)


def test_each_newer_tag_adds_what_the_sdk_adds() -> None:
    base = set(REGISTRIES["24.09"])
    assert set(REGISTRIES["25.04"]) - base == ADDED_IN_25_04
    for version in ("25.09", "26.05"):
        assert set(REGISTRIES[version]) == (base | ADDED_IN_25_04 | {"ap-southeast-6"}) - CHINA


def test_a_region_new_in_25_04_gets_its_own_account() -> None:
    uri = image_uri("ap-southeast-5", "25.04-py3")
    assert (
        uri == "550225433462.dkr.ecr.ap-southeast-5.amazonaws.com/sagemaker-tritonserver:25.04-py3"
    )


def test_a_region_the_tag_does_not_list_is_refused_naming_the_tags_that_do() -> None:
    with pytest.raises(UsageError, match="24.09-py3.*ap-southeast-5") as caught:
        image_uri("ap-southeast-5", "24.09-py3")
    assert "25.04-py3, 25.09-py3, 26.05-py3" in (caught.value.hint or "")


def test_china_is_refused_from_25_09_and_served_from_the_cn_domain_before() -> None:
    assert image_uri("cn-north-1", "25.04-py3").startswith(
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/"
    )
    with pytest.raises(UsageError) as caught:
        image_uri("cn-north-1", "25.09-py3-cpu")
    assert "25.04-py3" in (caught.value.hint or "") and "25.09" not in (caught.value.hint or "")


def test_tags_listing_a_region() -> None:
    from tritonship.sagemaker.images import tags_listing

    assert tags_listing("ap-southeast-6") == ["25.09-py3", "26.05-py3"]
    assert tags_listing("xx-nowhere-1") == []


def test_the_24_09_table_is_unchanged() -> None:
    assert image_uri("us-east-1", "24.09-py3").startswith("763104351884.dkr.ecr.us-east-1.")
    assert image_uri("ca-west-1", "24.09-py3").startswith("204538143572.")


@pytest.mark.parametrize(
    ("tag", "refused"),
    [("24.09-py3", False), ("25.02-py3", False), ("25.03-py3", True), ("25.04-py3", True)],
)
def test_inference_type_is_checked_only_from_25_03(tag: str, refused: bool, tmp_path: Path) -> None:
    """docker/sagemaker/serve gained the SAGEMAKER_TRITON_INFERENCE_TYPE check in r25.03."""
    (tmp_path / "m").mkdir()
    env = {"SAGEMAKER_TRITON_INFERENCE_TYPE": "chat"}
    if refused:
        with pytest.raises(ServeRefused, match="INFERENCE_TYPE"):
            serve_args(env, tmp_path, image_tag=tag)
    else:
        assert "--load-model=m" in serve_args(env, tmp_path, image_tag=tag)
