// sipphones console: comfort only; every page works without it.
// Moves the focus to the first field with an error, so that a keyboard or screen-reader user
// lands where the form needs attention.
document.addEventListener("DOMContentLoaded", function () {
  var invalid = document.querySelector("[aria-invalid=true]");
  if (invalid) { invalid.focus(); return; }
  var alert = document.querySelector("main [role=alert]");
  if (alert && document.querySelector("main form")) { alert.setAttribute("tabindex", "-1"); }
});
