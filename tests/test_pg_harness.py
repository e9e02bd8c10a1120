"""The tests' PostgreSQL: a fresh database per request, on a server that really answers."""

import psycopg


def test_each_request_gets_a_fresh_empty_database(postgres):
    first, second = postgres.fresh_database(), postgres.fresh_database()
    assert first != second
    with psycopg.connect(first) as conn:
        conn.execute("CREATE TABLE t (x int)")
    with psycopg.connect(second) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)


def test_a_private_cluster_starts_from_the_installed_binaries():
    from tests.pg import PrivateCluster, _answers

    cluster = PrivateCluster()
    try:
        assert _answers(cluster.url)
    finally:
        cluster.stop()
