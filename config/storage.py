"""The default file storage the environment asks for: local disk under MEDIA_ROOT, or S3 and any S3-compatible server
(TOOLPORT_STORAGE=s3) through django-storages. Read at settings time; tests call it to switch a run to S3."""

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from config.env import env

LOCAL: dict[str, Any] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def default_storage_from_env() -> dict[str, Any]:
    """The `STORAGES["default"]` entry. On S3: objects stay private (no ACL is sent, so the bucket's private default
    applies), a download is a URL signed for one hour, and an existing key is never overwritten. Credentials left
    unset fall to boto3's own chain (profile, instance or pod role)."""
    kind = env.str("TOOLPORT_STORAGE", default="local")
    if kind == "local":
        return LOCAL
    if kind != "s3":
        raise ImproperlyConfigured(f"TOOLPORT_STORAGE is 'local' or 's3', not {kind!r}.")
    bucket = env.str("AWS_STORAGE_BUCKET_NAME", default="")
    if not bucket:
        raise ImproperlyConfigured("TOOLPORT_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME, the bucket for uploaded files.")
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "security_token": env.str("AWS_SESSION_TOKEN", default="") or None,
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 3600,
            "file_overwrite": False,
        },
    }
