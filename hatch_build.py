"""Build hook (hatchling): a wheel carries the embedded synthetic data set and the brief notebook
under ``dmst_eval/_embedded/`` (see ``dmst_eval/_files.py``). An editable install reads them from
the repository instead, so it gets no copies."""
from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SHIPPED = {
    "data/synthetic": "dmst_eval/_embedded/data/synthetic",
    "notebooks/evaluation_brief.ipynb": "dmst_eval/_embedded/notebooks/evaluation_brief.ipynb",
}


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if self.target_name == "wheel" and version == "standard":
            build_data["force_include"].update(SHIPPED)
