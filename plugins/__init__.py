"""Built-in model plugins, registered through the ``ensemble_engine`` entry points."""
