"""OpenLineage of the data-moving operators: ``datasets`` (plain data, the naming rules), ``facets`` (the
OpenLineage classes, extra ``openlineage``), ``mixin`` (what operators inherit)."""
