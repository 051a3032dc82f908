"""Questions and answers on product pages, moderated like reviews."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member, User
from community.models import Answer, AnswerVote, Flag, ModerationStatus, Product, Question
from community.selectors import bought
from community.services.moderation import community_settings, fingerprint, log, posting_allowed, text_flags
from core import l10n
from core.errors import Conflict, Invalid, NotFound
from messaging.catalogue import wording
from messaging.models import Purpose
from messaging.services import notify


def _text(text: str, *, field: str = "text", low: int = 10, high: int = 1000) -> str:
    text = (text or "").strip()
    if not low <= len(text) <= high:
        message = _("Write %(low)s to %(high)s characters.") % {"low": low, "high": l10n.number(high)}
        raise Invalid(message, fields={field: message})
    return text


def _flags(model, *, text: str, print_: str, member: Member | None, exclude_pk=None) -> list[str]:
    settings = community_settings()
    flags = text_flags(text, banned=settings.banned())
    if print_ and model.objects.filter(fingerprint=print_).exclude(pk=exclude_pk).exists():
        flags.append(Flag.REPEATED_TEXT)
    if member is not None:
        since = timezone.now() - timezone.timedelta(minutes=settings.burst_minutes)
        if model.objects.filter(member=member, created_at__gte=since).count() + 1 >= settings.burst_count:
            flags.append(Flag.BURST)
    return flags


def question_ask(*, member: Member, product: Product, text: str) -> Question:
    """A member's question about a product; published once a moderator approves it."""
    text = _text(text)
    now = timezone.now()
    posting_allowed(member=member, now=now)
    print_ = fingerprint(text)
    with transaction.atomic():
        question = Question.objects.create(product=product, member=member, text=text, fingerprint=print_,
                                           flags=_flags(Question, text=text, print_=print_, member=member),
                                           created_at=now)
        log(subject=f"question:{question.pk}", action="submitted", flags=question.flags)
    return question


def answer_post(*, question_id: int, text: str, member: Member | None = None, staff_user: User | None = None
                ) -> Answer:
    """Answer a published question: staff (published at once) or a member who bought the product
    (moderated first). The asker is told when the answer is published."""
    text = _text(text, high=2000, low=2)
    question = Question.objects.select_related("product").filter(pk=question_id,
                                                                 status=ModerationStatus.APPROVED).first()
    if question is None:
        raise NotFound(_("No such question."), fields={"question": _("No published question here.")})
    if staff_user is None:
        if member is None or not bought(member=member, sku=question.product.sku):
            raise Conflict(_("Only customers who bought this product can answer."), code="not_a_buyer",
                           fields={"text": _("Only customers who bought this product can answer.")})
        posting_allowed(member=member, now=timezone.now())
    print_ = fingerprint(text)
    with transaction.atomic():
        answer = Answer.objects.create(
            question=question, member=member if staff_user is None else None, staff_user=staff_user, text=text,
            fingerprint=print_, verified_buyer=staff_user is None,
            flags=[] if staff_user else _flags(Answer, text=text, print_=print_, member=member),
            status=ModerationStatus.APPROVED if staff_user else ModerationStatus.PENDING,
            moderated_at=timezone.now() if staff_user else None,
        )
        log(subject=f"answer:{answer.pk}", action="approved" if staff_user else "submitted", actor_user=staff_user,
            flags=answer.flags)
        if staff_user:
            _tell_asker(answer, question)
    return answer


def _tell_asker(answer: Answer, question: Question) -> None:
    if answer.member_id == question.member_id:
        return
    notify(purpose=Purpose.TRANSACTIONAL, notes=[wording("question_answered").note(
        question.member_id, reverse("community:product", args=[question.product.sku]) + "#questions",
        product=question.product.name, answer=answer.text[:300])])


def post_moderate(*, kind: str, post_id: int, approve: bool, moderator: User | None, reason: str = "") -> bool:
    """Approve or reject a question or an answer (with a reason the member sees). Returns whether
    it changed. Publishing an answer tells the asker."""
    model = {"question": Question, "answer": Answer}[kind]
    if not approve and not (reason or "").strip():
        raise Invalid(_("Say why, for the member."), fields={"reason": _("A reason is required to reject.")})
    wanted = ModerationStatus.APPROVED if approve else ModerationStatus.REJECTED
    with transaction.atomic():
        post = model.objects.select_for_update().filter(pk=post_id).first()
        if post is None or post.status == wanted:
            return False
        post.status, post.moderated_at = wanted, timezone.now()
        post.rejection_reason = "" if approve else reason.strip()
        post.save(update_fields=["status", "moderated_at", "rejection_reason"])
        log(subject=f"{kind}:{post.pk}", action="approved" if approve else "rejected", actor_user=moderator,
            reason=reason, flags=post.flags)
        if kind == "answer" and approve:
            question = Question.objects.select_related("product").get(pk=post.question_id)
            _tell_asker(post, question)
    return True


def answer_vote_helpful(*, answer_id: int, member: Member) -> Answer:
    answer = Answer.objects.filter(pk=answer_id, status=ModerationStatus.APPROVED).first()
    if answer is None:
        raise NotFound(_("No such answer."), fields={"answer": _("No published answer here.")})
    if answer.member_id == member.pk:
        raise Conflict(_("You cannot vote for your own answer."), code="own_answer",
                       fields={"answer": _("You cannot vote for your own answer.")})
    try:
        with transaction.atomic():
            AnswerVote.objects.create(answer=answer, member=member)
            Answer.objects.filter(pk=answer.pk).update(helpful_count=F("helpful_count") + 1)
    except IntegrityError:
        raise Conflict(_("You already marked this answer helpful."), code="already_voted",
                       fields={"answer": _("Already marked helpful.")}) from None
    answer.refresh_from_db()
    return answer
