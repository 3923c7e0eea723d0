"""The migration machinery beside the routing layer (`shop.aspects`, which weaves, routes and
compares): the server-wide phase as durable state, the gates and steps between phases, the
two-direction journal of writes one store still lacks, and the copies that replay it.

    entities   the one registry of migrated entities
    state      the phase document (MySQL + DynamoDB), each worker's cached view of it
    journal    writes waiting to reach the other store, in the store that has them
    sync       copy one entity either way; compare one entity
    runs       backfill, verify, repair, reverse copy
    control    gates and transitions, behind `flask phase` and the flag page
"""
