"""Email goes out through Celery.

``QueuedEmailBackend`` is the ``EMAIL_BACKEND``: it turns each message into plain data and queues
``deliver_email`` once the current transaction commits, so a request never waits on SMTP and no
email leaves for a change that was rolled back. The task hands the message to
``EMAIL_DELIVERY_BACKEND`` (SMTP or the console). Delivery is at least once: a worker that dies
after SMTP accepted the message but before acknowledging the task sends it again.
"""

from functools import partial

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction


def message_to_payload(message) -> dict:
    return {
        "subject": str(message.subject),
        "body": str(message.body),
        "from_email": message.from_email,
        "to": list(message.to),
        "cc": list(message.cc),
        "bcc": list(message.bcc),
        "reply_to": list(message.reply_to),
        "headers": dict(message.extra_headers),
        "alternatives": [[content, mimetype] for content, mimetype in getattr(message, "alternatives", [])],
    }


def payload_to_message(payload: dict) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=payload["subject"],
        body=payload["body"],
        from_email=payload["from_email"],
        to=payload["to"],
        cc=payload["cc"],
        bcc=payload["bcc"],
        reply_to=payload["reply_to"],
        headers=payload["headers"],
    )
    for content, mimetype in payload["alternatives"]:
        message.attach_alternative(content, mimetype)
    return message


class QueuedEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        count = 0
        for message in email_messages:
            if message.attachments:
                raise ValueError("Queued email does not carry attachments; link to the file instead.")
            transaction.on_commit(partial(deliver_email.delay, message_to_payload(message)))
            count += 1
        return count


@shared_task(name="loyalty_site.deliver_email", autoretry_for=(OSError,), retry_backoff=30, max_retries=8)
def deliver_email(payload: dict) -> None:
    connection = get_connection(settings.EMAIL_DELIVERY_BACKEND)
    connection.send_messages([payload_to_message(payload)])
