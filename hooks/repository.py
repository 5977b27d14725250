"""Edit links only when the build knows the repository (REPO_URL); see sitebuild.repository."""

from sitebuild.repository import edit_uri_for


def on_config(config):
    config.edit_uri = edit_uri_for(config.repo_url)
    return config
