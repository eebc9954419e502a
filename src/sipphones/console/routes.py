"""The console's routes, under ``/console`` (mounted by ``api.app``; routed by Starlette's router,
never on the Zoom routes' direct path)."""

from __future__ import annotations

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sipphones.console.pages import HERE
from sipphones.console.views import auth, phones, transfer, users

P = "/console"

routes = [
    Route(P, auth.root, methods=["GET"]),
    Route(P + "/signin", auth.sign_in_form, methods=["GET"]),
    Route(P + "/signin", auth.sign_in_post, methods=["POST"]),
    Route(P + "/signout", auth.sign_out, methods=["POST"]),
    Route(P + "/phones", phones.phone_list, methods=["GET"]),
    Route(P + "/phones/new", phones.new_form, methods=["GET"]),
    Route(P + "/phones/new", phones.create, methods=["POST"]),
    Route(P + "/phones/{phone_id}/edit", phones.edit_form, methods=["GET"]),
    Route(P + "/phones/{phone_id}/edit", phones.update, methods=["POST"]),
    Route(P + "/phones/{phone_id}/delete", phones.delete_form, methods=["GET"]),
    Route(P + "/phones/{phone_id}/delete", phones.delete, methods=["POST"]),
    Route(P + "/phones/{phone_id}/check", phones.check_now, methods=["POST"]),
    Route(P + "/csv", transfer.transfer_page, methods=["GET"]),
    Route(P + "/csv/import", transfer.upload, methods=["POST"]),
    Route(P + "/csv/confirm", transfer.confirm, methods=["POST"]),
    Route(P + "/csv/export", transfer.export, methods=["GET"]),
    Route(P + "/users", users.user_list, methods=["GET"]),
    Route(P + "/users", users.add_user, methods=["POST"]),
    Mount(P + "/static", StaticFiles(directory=HERE / "static"), name="console-static"),
]
