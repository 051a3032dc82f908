"""The shared kernel every app builds on: domain errors, the domain events and their outbox, the
API's error shape and parsing, bulk SQL, text checks, storage, mail, admin bases. It imports no
app; apps import it; ``loyalty_site`` (settings, URLs, Celery) imports everything."""
