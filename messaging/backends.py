"""``EMAIL_BACKEND``: whatever code sends through Django's mail API (allauth's verification and
password-reset mails, the admin's) goes into the outbox as a transactional message, sent after
commit like every other message; ``EMAIL_DELIVERY_BACKEND`` is what finally delivers it."""

import uuid

from django.core.mail.backends.base import BaseEmailBackend
from django.utils import translation


class OutboxEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        from accounts.models import Member
        from messaging.models import Purpose
        from messaging.services import Outgoing, messages_queue

        items = []
        for message in email_messages:
            if message.attachments:
                raise ValueError("Messages do not carry attachments; link to the file instead.")
            html = next((content for content, mimetype in getattr(message, "alternatives", [])
                         if mimetype == "text/html"), "")
            for address in [*message.to, *message.cc, *message.bcc]:
                # Written in the language active now (allauth's mails: the visitor's): laid out in it too.
                items.append((address, {"subject": str(message.subject), "body": str(message.body), "html": html,
                                        "language": translation.get_language() or ""}))
        members = dict(Member.objects.filter(email__in=[address.lower() for address, _ in items])
                       .values_list("email", "pk"))
        return messages_queue(items=[
            Outgoing(template="raw", purpose=Purpose.TRANSACTIONAL, key=f"mail:{uuid.uuid4().hex}",
                     member_id=members.get(address.lower()), to=address, context=context)
            for address, context in items])
