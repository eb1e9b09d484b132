-- One PostgreSQL server, three databases: Airflow metadata (POSTGRES_DB), the MLflow backend store, the demo source.
CREATE DATABASE mlflow;
CREATE DATABASE source;
