"""The chat page (the front end fetches ``/chat/token``) and an async view that awaits the
chat session."""

from chatauth.integrations.django.views import chat_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "chat/index.html")


@chat_required
async def whoami(request: HttpRequest) -> JsonResponse:
    """An async view: ``await request.achat()`` never blocks the event loop."""
    chat = await request.achat()
    return JsonResponse({"uid": chat.uid, "provider": chat.provider, "client": dict(chat.client)})
