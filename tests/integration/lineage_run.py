"""Run by tests/integration/test_lineage.py in its own process, with an OpenLineage file transport configured
before Airflow loads its plugins (the OpenLineage listener is registered at plugin load): one day of churn ingest
and a manual training run, through ``dag.test()`` (the real task runner)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pendulum
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, seed_range

DAY = dt.date(2026, 11, 10)


def main() -> None:
    from airflow.dag_processing.dagbag import DagBag

    home = Path(os.environ["MLOPS_HOME"])
    seed_range(create_engine(f"sqlite:///{home / 'source.db'}"), [DAY], SourceSpec(seed=5))
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "reserialize"], check=True)
    bag = DagBag(dag_folder=os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], "mlops_models.py"))
    ingest = bag.get_dag("churn_classifier__ingest").test(
        logical_date=pendulum.datetime(DAY.year, DAY.month, DAY.day, tz="UTC").add(days=1)
    )
    training = bag.get_dag("churn_classifier__training").test(run_conf={"reason": "manual"})
    print(f"states: ingest={ingest.state} training={training.state}")


if __name__ == "__main__":
    main()
