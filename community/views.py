import json
import mimetypes

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import member_required
from accounts.services import member_get_or_create_for_user
from community import selectors, services
from community.forms import AnswerForm, PublicProfileForm, QuestionForm, ReportForm, ReviewForm
from community.models import Answer, HelpfulVote, ModerationStatus, PublicProfile, Question, Review
from community.services import public_profile_update
from core.errors import DomainError
from core.replica import replica_reads
from core.storage import private_storage
from recommendations.selectors import related_products
from rewards.models import MemberBadge, MemberTier

REVIEWS_PER_PAGE = 10
RELATED_ON_PAGE = 6
# What may not appear raw inside <script>: the same escapes as Django's json_script.
_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def index(request):
    member = member_get_or_create_for_user(user=request.user) if request.user.is_authenticated else None
    start_of_month = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    context = {
        "spotlights": list(selectors.spotlights()),
        "boards": [
            selectors.points_leaderboard(title=_("Points this month"), since=start_of_month, member=member),
            selectors.points_leaderboard(title=_("Points of all time"), since=None, member=member),
            *selectors.challenge_leaderboards(member=member),
        ],
        "member": member,
        "testimonials": [(review, selectors.author_name(review.member)) for review in selectors.testimonials()],
        "photos": selectors.photo_gallery(),
    }
    return render(request, "community/index.html", context)


def member_page(request, member_id: int):
    profile = selectors.public_member(member_id=member_id)
    if profile is None:
        raise Http404("No public profile here.")
    badges = MemberBadge.objects.filter(member_id=member_id).select_related("level__badge").order_by("awarded_at")
    tier = MemberTier.objects.filter(member_id=member_id).select_related("tier").first()
    return render(request, "community/member.html", {"profile": profile, "badges": badges, "tier": tier})


@member_required
@require_http_methods(["GET", "POST"])
def profile(request):
    current = PublicProfile.objects.filter(member=request.member).first()
    initial = {"is_public": current.is_public, "display_name": current.display_name} if current else {
        "display_name": f"{request.member.first_name} {request.member.last_name[:1]}".strip() + (
            "." if request.member.last_name else "")}
    form = PublicProfileForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            public_profile_update(member=request.member, is_public=data["is_public"],
                                  display_name=data["display_name"], avatar=data["avatar"],
                                  remove_avatar=data["remove_avatar"])
        except DomainError as exc:
            for field, problems in exc.fields.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, _("Your community profile is saved."))
            return redirect("community:profile")
    return render(request, "community/profile.html", {"form": form, "current": current})


# --- Products and reviews -------------------------------------------------------------------------

def _product_or_404(sku: str):
    product = services.product_ensure(sku=sku)
    if product is None:
        raise Http404("No such product.")
    return product


def _form_errors(form, exc: DomainError) -> None:
    for field, problems in exc.fields.items():
        form.add_error(field if field in form.fields else None, problems)
    if not exc.fields:
        form.add_error(None, exc.message)


def product(request, sku: str):
    """A product's page: rating summary, reviews (sorted, filtered, paginated), questions, and
    JSON-LD for search engines. A constant number of queries however many reviews it has."""
    return _product_page(request, _product_or_404(sku))


def _question_form(data=None):
    return QuestionForm(data, auto_id="id_question_%s")


def _answer_form(question_id: int, data=None):
    return AnswerForm(data, auto_id=f"id_answer_{question_id}_%s")


def _report_form(review_id: int, data=None):
    return ReportForm(data, auto_id=f"id_report_{review_id}_%s")


def _product_page(request, product, *, sent: tuple[str, int | None, forms.Form] | None = None):
    """The page; ``sent``: a question, answer or report form that came back with errors, shown in
    its place with the text kept (each form has ids of its own: one label, one box)."""
    sort = request.GET.get("sort") if request.GET.get("sort") in selectors.SORTS else "relevant"
    rating = request.GET.get("rating")
    rating = int(rating) if rating in {"1", "2", "3", "4", "5"} else None
    with_photos = request.GET.get("photos") == "1"
    summary = selectors.rating_summary(product=product)
    paginator = Paginator(selectors.product_reviews(product=product, sort=sort, rating=rating,
                                                    with_photos=with_photos), REVIEWS_PER_PAGE)
    if not with_photos:
        paginator.count = summary.reviews_with(rating)  # known already: saves a COUNT over the reviews
    page = paginator.get_page(request.GET.get("page"))
    sent_kind, sent_pk, sent_form = sent or ("", None, None)
    reviews = [(review, selectors.author_name(review.member),
                sent_form if sent_kind == "report" and sent_pk == review.pk else _report_form(review.pk))
               for review in page.object_list]
    questions = [(question, sent_form if sent_kind == "answer" and sent_pk == question.pk
                  else _answer_form(question.pk)) for question in selectors.product_questions(product=product)]
    member = member_get_or_create_for_user(user=request.user) if request.user.is_authenticated else None
    voted, mine = set(), None
    if member is not None:
        voted = set(HelpfulVote.objects.filter(member=member, review_id__in=[r.pk for r, _, _ in reviews])
                    .values_list("review_id", flat=True))
        mine = Review.objects.filter(member=member, product=product).only("pk", "status").first()
    url = request.build_absolute_uri(reverse("community:product", args=[product.sku]))
    json_ld = json.dumps(selectors.product_json_ld(product=product, summary=summary, reviews=page.object_list,
                                                   url=url), ensure_ascii=False).translate(_SCRIPT_ESCAPES)
    query = {key: value for key, value in (("sort", sort if sort != "relevant" else ""),
                                           ("rating", rating or ""), ("photos", "1" if with_photos else "")) if value}
    return render(request, "community/product.html", {
        "product": product, "summary": summary, "page": page, "reviews": reviews, "sorts": selectors.SORTS,
        "sort": sort, "rating": rating, "with_photos": with_photos, "member": member, "voted": voted, "mine": mine,
        "questions": questions, "json_ld": mark_safe(json_ld), "sent": sent_kind,
        "related": related_products(product=product, limit=RELATED_ON_PAGE),
        "question_form": sent_form if sent_kind == "question" else _question_form(),
        "filter_query": "&".join(f"{k}={v}" for k, v in query.items()),
    })


@member_required
@require_http_methods(["GET", "POST"])
def review(request, sku: str):
    """Write or edit your review of a product."""
    product = _product_or_404(sku)
    existing = Review.objects.filter(member=request.member, product=product).first()
    photos = list(existing.photos.all()) if existing else []
    initial = {"rating": existing.rating, "title": existing.title, "text": existing.text} if existing else {}
    form = ReviewForm(request.POST or None, request.FILES or None, initial=initial, photos=photos)
    photos_again = False
    if request.method == "POST" and not form.is_valid() and request.FILES.getlist("photos"):
        # The other errors are not the only ones: a photo that is not a picture says so now too.
        try:
            services.review_photos_check(photos=request.FILES.getlist("photos"))
        except DomainError as exc:
            _form_errors(form, exc)
        else:
            photos_again = True  # browsers forget chosen files when a form comes back
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.review_submit(
                member=request.member, product=product,
                data=services.ReviewInput(data["rating"], data["title"], data["text"]),
                photos=data["photos"], remove_photo_ids=[int(pk) for pk in data.get("remove_photos", [])])
        except DomainError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Thank you! Your review is with our moderators and appears once approved."))
            return redirect("community:my-reviews")
    return render(request, "community/review_form.html", {
        "form": form, "product": product, "existing": existing, "photos": photos,
        "verified": selectors.bought(member=request.member, sku=product.sku),
        "allowed": services.community_settings().allow_unverified_reviews,
        "shown_as": selectors.author_name(request.member), "photos_again": photos_again,
    })


def _act(request, *, sku: str | None, anchor: str, action, done: str = ""):
    """Run a one-click action from a product page (a vote) and go back to it, saying how it went."""
    if sku is None:
        raise Http404
    try:
        action()
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if done:
            messages.success(request, done)
    return redirect(reverse("community:product", args=[sku]) + anchor)


def _sku_of(model, pk: int, path: str) -> str | None:
    return model.objects.filter(pk=pk).values_list(path, flat=True).first()


@member_required
@require_POST
def review_helpful(request, review_id: int):
    return _act(request, sku=_sku_of(Review, review_id, "product__sku"), anchor=f"#review-{review_id}",
                action=lambda: services.review_vote_helpful(review_id=review_id, member=request.member),
                done=_("Thanks for your vote."))


def _send(request, *, product, kind: str, pk: int | None, form, action, done: str, anchor: str):
    """A question, answer or report from the product page: sent and back to the page with thanks,
    or the page again with the message next to the box and the text kept."""
    if form.is_valid():
        try:
            action(form.cleaned_data)
        except DomainError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, done)
            return redirect(reverse("community:product", args=[product.sku]) + anchor)
    for name in form.errors:  # the browser takes the reader to the box to correct
        if name in form.fields:
            form.fields[name].widget.attrs["autofocus"] = True
            break
    return _product_page(request, product, sent=(kind, pk, form))


@member_required
@require_POST
def review_report(request, review_id: int):
    review = Review.objects.select_related("product").filter(pk=review_id).first()
    if review is None:
        raise Http404
    return _send(request, product=review.product, kind="report", pk=review_id,
                 form=_report_form(review_id, request.POST), anchor=f"#review-{review_id}",
                 action=lambda data: services.review_report(review_id=review_id, member=request.member,
                                                            reason=data["reason"]),
                 done=_("Thank you. Our moderators will look at this review."))


@member_required
@require_POST
def question_ask(request, sku: str):
    product = _product_or_404(sku)
    return _send(request, product=product, kind="question", pk=None, form=_question_form(request.POST),
                 anchor="#questions",
                 action=lambda data: services.question_ask(member=request.member, product=product, text=data["text"]),
                 done=_("Thank you! Your question appears once a moderator has read it."))


@member_required
@require_POST
def answer_post(request, question_id: int):
    question = Question.objects.select_related("product").filter(pk=question_id).first()
    if question is None:
        raise Http404
    return _send(request, product=question.product, kind="answer", pk=question_id,
                 form=_answer_form(question_id, request.POST), anchor=f"#question-{question_id}",
                 action=lambda data: services.answer_post(question_id=question_id, member=request.member,
                                                          text=data["text"]),
                 done=_("Thank you! Your answer appears once a moderator has read it."))


@member_required
@require_POST
def answer_helpful(request, answer_id: int):
    return _act(request, sku=_sku_of(Answer, answer_id, "question__product__sku"), anchor="#questions",
                action=lambda: services.answer_vote_helpful(answer_id=answer_id, member=request.member))


@member_required
def my_reviews(request):
    return render(request, "community/my_reviews.html", {
        "reviews": selectors.member_reviews(member=request.member),
        "to_review": selectors.bought_not_reviewed(member=request.member),
        "statuses": ModerationStatus,
    })


def private_media(request, name: str):
    """A member's upload, for those who may see it (``selectors.private_media_visible``); 404 for
    everyone else, so that a pending photo's address does not even confirm it exists."""
    allowed, public = selectors.private_media_visible(name=name, user=request.user)
    storage = private_storage()
    if not allowed or not storage.exists(name):
        raise Http404("No such file.")
    if hasattr(storage, "signed_url"):  # object storage: the bucket sends the bytes, for a few minutes
        response = HttpResponseRedirect(storage.signed_url(name))
    else:
        response = FileResponse(storage.open(name, "rb"), content_type=mimetypes.guess_type(name)[0])
    # Published files may be cached anywhere; the rest only by the browser that was allowed.
    response["Cache-Control"] = "public, max-age=86400" if public else "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


FRAGMENT_REVIEWS = 10


@require_GET
def reviews_fragment(request, sku: str):
    """A product's rating and its most relevant published reviews as an HTML fragment, with the
    schema.org JSON-LD that gives search engines the stars, for a shop to include in its own
    product page on the server (no script, no cookie, the same for everyone: cacheable)."""
    try:
        product = _product_or_404(sku)
    except Http404:
        product = None
    if product is None:
        response = HttpResponse("", content_type="text/html; charset=utf-8", status=404)
    else:
        with replica_reads():  # shops' pages show it to everyone, and cache it for minutes anyway
            summary = selectors.rating_summary(product=product)
            reviews = list(selectors.product_reviews(product=product)[:FRAGMENT_REVIEWS])
            url = request.build_absolute_uri(reverse("community:product", args=[product.sku]))
            json_ld = json.dumps(selectors.product_json_ld(product=product, summary=summary, reviews=reviews,
                                                           url=url), ensure_ascii=False).translate(_SCRIPT_ESCAPES)
            response = render(request, "community/reviews_fragment.html", {
                "product": product, "summary": summary, "url": url, "json_ld": mark_safe(json_ld),
                "reviews": [(review, selectors.author_name(review.member)) for review in reviews]})
    response["Cache-Control"] = "public, max-age=300"
    return response
