"""Airflow's local settings hook (imported at start-up by every ``airflow`` process; the plugins folder is on
``sys.path``). It only preloads the task libraries in the processes that fork tasks; see
``mlops_provider.runtime.preload``. Keep your own settings here too: this file is hidden from the plugin walk by
``.airflowignore``."""

from __future__ import annotations

try:
    from mlops_provider.runtime.preload import preload_task_libraries
except ImportError:  # the provider is not installed in this environment: nothing to preload
    pass
else:
    preload_task_libraries()
