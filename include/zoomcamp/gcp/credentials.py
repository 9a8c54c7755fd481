"""Which GCP credentials the connection `google_cloud_default` resolves to, described without the key.

The google provider's hook takes, in this order: the connection's anonymous flag, its key file
(`key_path`), a Secret Manager secret (`key_secret_name`), its key JSON (`keyfile_dict`), a credential
configuration file, and with none of them `google.auth.default()`, which reads
GOOGLE_APPLICATION_CREDENTIALS, then gcloud's Application Default Credentials file, then the metadata
server of a GCE/GKE/Cloud Run machine. `discover` follows the same order from the connection's extra and
the environment, reading files only: no network, so it answers at once offline (google.auth.default()
probes the metadata server for seconds when nothing else is found).

Used by `make run` (what it prints at start) and by the check every GCP task runs first
(include/zoomcamp/gcp/preflight.py): one place for the discovery and its messages.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from include.zoomcamp import config

GAC_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
ADC_FILE = "application_default_credentials.json"
PROVIDER_EXTRA_PREFIX = "extra__google_cloud_platform__"
DMI_PRODUCT_NAME = Path("/sys/class/dmi/id/product_name")
DOCS = "docs/gcp.md#credentials"


@dataclass(frozen=True)
class CredentialSource:
    """Where the credentials come from (`source`), whose they are (`identity`: an e-mail or a kind of
    credentials, never key material), whether they can be used, and the project they name if any."""

    source: str
    identity: str = ""
    usable: bool = True
    problem: str = ""
    project: str = ""

    def describe(self) -> str:
        text = f"{self.source}: {self.identity}" if self.identity else self.source
        return f"{text} ({self.problem})" if self.problem else text


def _field(extra: Mapping, name: str):
    """An extra field as the provider reads it: plain name first, then the prefixed form of older UIs."""
    value = extra.get(name)
    if value in (None, ""):
        value = extra.get(PROVIDER_EXTRA_PREFIX + name)
    return value


def _truthy(value) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def _describe_info(info: Mapping, source: str, problem: str = "") -> CredentialSource:
    """A credentials JSON (service-account key, gcloud user credentials, external account, ...)."""
    kind = info.get("type", "")
    project = info.get("project_id") or info.get("quota_project_id") or ""
    if kind == "service_account":
        missing = [name for name in ("client_email", "private_key", "token_uri") if not info.get(name)]
        if missing:
            return CredentialSource(source, "service-account key", False,
                                    f"the key lacks {', '.join(missing)}: download a new JSON key", project)
        return CredentialSource(source, f"service account {info['client_email']}", True, problem, project)
    if kind == "authorized_user":
        account = info.get("account") or ""
        who = f"ADC user credentials of {account}" if account else "ADC user credentials"
        return CredentialSource(source, who + " (gcloud auth application-default login)", True, problem, project)
    if kind == "external_account":
        return CredentialSource(source, "workload identity federation (external account)", True, problem, project)
    if kind == "impersonated_service_account":
        target = str(info.get("service_account_impersonation_url", "")).rsplit("/", 1)[-1].split(":")[0]
        return CredentialSource(source, f"impersonating {target or 'a service account'}", True, problem, project)
    return CredentialSource(source, f"credentials of type {kind or '(none)'}", False,
                            "not a service-account key or gcloud credentials file", project)


def _from_file(path: str, source: str) -> CredentialSource:
    file = Path(path).expanduser()
    if not file.is_file():
        return CredentialSource(f"{source} {path}", "", False, "no such file")
    try:
        info = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        return CredentialSource(f"{source} {path}", "", False, f"not a readable JSON file: {type(exc).__name__}")
    if not isinstance(info, dict):
        return CredentialSource(f"{source} {path}", "", False, "not a JSON object")
    return _describe_info(info, f"{source} {path}")


def adc_file(environ: Mapping[str, str], home: Path | None = None) -> Path:
    """gcloud's Application Default Credentials file (CLOUDSDK_CONFIG moves gcloud's configuration)."""
    if environ.get("CLOUDSDK_CONFIG"):
        return Path(environ["CLOUDSDK_CONFIG"]) / ADC_FILE
    home = home or Path(environ.get("HOME") or Path.home())
    return home / ".config" / "gcloud" / ADC_FILE


def on_google_cloud(environ: Mapping[str, str], dmi_product_name: Path | None = None) -> bool:
    """A GCE/GKE machine (its metadata server gives credentials), told without asking the network."""
    if environ.get("GCE_METADATA_HOST") or environ.get("GCE_METADATA_IP"):
        return True
    try:
        return "Google" in (dmi_product_name or DMI_PRODUCT_NAME).read_text()
    except OSError:
        return False


def from_environment(environ: Mapping[str, str], home: Path | None = None,
                     dmi_product_name: Path | None = None) -> CredentialSource | None:
    """What google.auth.default() finds: GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file, a GCE metadata
    server; None when there is none of them."""
    if environ.get(GAC_ENV):
        return _from_file(environ[GAC_ENV], GAC_ENV)
    adc = adc_file(environ, home)
    if adc.is_file():
        return _from_file(str(adc), "Application Default Credentials")
    if on_google_cloud(environ, dmi_product_name):
        return CredentialSource("the metadata server of this Google Cloud machine", "its service account")
    return None


def discover(extra: Mapping | None, environ: Mapping[str, str], home: Path | None = None,
             dmi_product_name: Path | None = None, conn_id: str = config.GCP_CONN_ID) -> CredentialSource:
    """The credentials a connection with this extra resolves to (None: the connection is not defined)."""
    conn = f"connection {conn_id!r}"
    if extra is None:
        return CredentialSource(conn, "", False, "the connection is not defined")
    if _truthy(_field(extra, "is_anonymous")):
        return CredentialSource(f"{conn} (anonymous)", "no credentials", False,
                                "anonymous access is for the emulators: real GCP refuses it")
    if key_path := _field(extra, "key_path"):
        return _from_file(str(key_path), f"{conn}, key file")
    if secret := _field(extra, "key_secret_name"):
        return CredentialSource(f"{conn}, key in Secret Manager secret {secret!r}",
                                "read at run time with Application Default Credentials")
    if (keyfile := _field(extra, "keyfile_dict")) not in (None, ""):
        try:
            info = json.loads(keyfile) if isinstance(keyfile, str) else dict(keyfile)
        except ValueError:
            return CredentialSource(f"{conn}, key JSON", "", False, "the Keyfile JSON field is not valid JSON")
        return _describe_info(info, f"{conn}, key JSON")
    if _field(extra, "credential_config_file"):
        return CredentialSource(f"{conn}, credential configuration file", "workload identity federation")
    found = from_environment(environ, home, dmi_product_name)
    if found is None:
        return CredentialSource("none", "", False,
                                f"{conn} has no key, {GAC_ENV} is not set and there is no "
                                f"Application Default Credentials file ({adc_file(environ, home)})")
    return found


def three_ways(conn_id: str = config.GCP_CONN_ID) -> str:
    return (f"Give credentials in one of three ways ({DOCS}): "
            f"(1) connection {conn_id!r} (Admin > Connections, or `airflow connections add`): a service "
            "account's Keyfile JSON or Keyfile Path, or the connection from a secrets backend; "
            f"(2) {GAC_ENV}=/path/to/key.json in the environment of `make run`; "
            "(3) Application Default Credentials: `gcloud auth application-default login`.")


def unusable_message(found: CredentialSource, project: str, conn_id: str = config.GCP_CONN_ID) -> str:
    """Why GCP tasks cannot run, for `make run`'s warning and the first task's failure."""
    what = found.problem if found.source == "none" else f"{found.describe()}"
    return (f"No usable GCP credentials for project {project or '(not set: GCP_PROJECT_ID in zoomcamp.env)'} "
            f"through connection {conn_id!r}: {what}. {three_ways(conn_id)}")
