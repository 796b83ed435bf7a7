"""SageMaker Triton image registries: which account hosts each tag's image in each region.

From the SageMaker Python SDK's image table, ``sagemaker-tritonserver.json``
(github.com/aws/sagemaker-python-sdk, ``sagemaker-core/src/sagemaker/core/image_uri_config/``
at commit a24812666d258d9d19c9a82d0c9385ca0bd3ba01; the file last changed in 7c7f7a93,
"feat: triton v26.05"; the 2.x branch ``master-v2`` keeps it as
``src/sagemaker/image_uri_config/`` with the same tables up to 25.09). The SDK lists one
``{region: account}`` table per tag, and a region has the same account in every table that
lists it: so it is kept here as one account per region and the regions each tag lists.
``tests/data/sagemaker-python-sdk/`` holds the SDK's file, and a unit test compares every
(tag, region) account with it; docs/deploying.md says how to update both.
"""

from __future__ import annotations

#: The account that hosts the image in each region, whichever tag lists the region.
ACCOUNTS: dict[str, str] = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-1": "763104351884",
    "ap-northeast-2": "763104351884",
    "ap-northeast-3": "364406365360",
    "ap-south-1": "763104351884",
    "ap-south-2": "772153158452",
    "ap-southeast-1": "763104351884",
    "ap-southeast-2": "763104351884",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437",
    "ca-central-1": "763104351884",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-1": "763104351884",
    "eu-central-2": "380420809688",
    "eu-north-1": "763104351884",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "eu-west-1": "763104351884",
    "eu-west-2": "763104351884",
    "eu-west-3": "763104351884",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "sa-east-1": "763104351884",
    "us-east-1": "763104351884",
    "us-east-2": "763104351884",
    "us-west-1": "763104351884",
    "us-west-2": "763104351884",
}
#: The regions 25.04 adds to the 26 that every tag from 23.12 to 24.09 lists.
_ADDED_IN_25_04 = frozenset(
    {
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
)
#: 25.09 adds one more region, and lists no China region any more.
_ADDED_IN_25_09, _CHINA = frozenset({"ap-southeast-6"}), frozenset({"cn-north-1", "cn-northwest-1"})
_UP_TO_24_09 = frozenset(ACCOUNTS) - _ADDED_IN_25_04 - _ADDED_IN_25_09
_FROM_25_09 = (_UP_TO_24_09 | _ADDED_IN_25_04 | _ADDED_IN_25_09) - _CHINA
_REGIONS = {
    **dict.fromkeys(("23.12", "24.01", "24.03", "24.05", "24.09"), _UP_TO_24_09),
    "25.04": _UP_TO_24_09 | _ADDED_IN_25_04,
    "25.09": _FROM_25_09,
    "26.05": _FROM_25_09,
}

#: ``{tag version: {region: account}}``, as the SDK's table has it.
REGISTRIES: dict[str, dict[str, str]] = {
    version: {region: ACCOUNTS[region] for region in sorted(regions)}
    for version, regions in _REGIONS.items()
}
