"""The store: tables, engine, migrations and the queries the services share."""
