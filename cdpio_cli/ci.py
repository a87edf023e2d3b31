"""Is this run inside a CI system?

Used to refuse a silent sandbox: in CI, a missing config must fail the job,
not go green against a fake service.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Environment variables CI systems set on every job.  `CI` is the common one
# (GitHub Actions, GitLab, CircleCI, Buildkite, Travis, Bitbucket, Drone, ...);
# the others cover systems that do not set it.
CI_ENV_VARS = (
    "CI",
    "CONTINUOUS_INTEGRATION",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "JENKINS_URL",
    "CIRCLECI",
    "TRAVIS",
    "TF_BUILD",
    "TEAMCITY_VERSION",
    "BITBUCKET_BUILD_NUMBER",
    "CODEBUILD_BUILD_ID",
    "DRONE",
    "APPVEYOR",
    "SEMAPHORE",
    "BUILD_BUILDID",
)

_OFF = {"", "0", "false", "no", "off"}


def detected_ci(environ: Mapping[str, str] | None = None) -> str | None:
    """`NAME=value` of the first CI variable set (not to a false value), or None."""
    env = os.environ if environ is None else environ
    for name in CI_ENV_VARS:
        value = env.get(name)
        if value is not None and value.strip().lower() not in _OFF:
            return f"{name}={value}" if len(value) <= 20 else name
    return None
