"""Example DAGs of the provider, one per stage, quoted by the how-to pages (docs/howto/). They parse with the core
package alone (no extra): a task whose extra is missing fails when it runs, naming the pip command.

Point a DAG folder at them to try them: ``AIRFLOW__CORE__DAGS_FOLDER=$(python -c "import mlops_provider.example_dags
as m, os; print(os.path.dirname(m.__file__))")``. Every value that belongs to a dataset or a model (table, columns,
suite, image) is a placeholder to replace with yours; the model spec and ``mlops new-model`` write them for you.
"""
