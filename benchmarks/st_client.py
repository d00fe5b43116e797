"""A Streamlit session without a browser: Streamlit's own websocket protocol, spoken as a tab does.

``benchmarks/load.py`` uses it to seat several people at the dashboard without running their
browsers on the server's 2 cores (in a room each person's browser runs on their own machine).
The server does what it does for a tab: script runs with the session's widget states, uploads
over HTTP, fragment refreshes (``st.fragment(run_every=...)``) at the intervals the server asks
for, media fetches. Nothing is drawn; a run's elements are kept as Streamlit's protobuf
``Element`` messages, by delta path, so a caller finds widgets and reads results in them.

Built on the messages Streamlit ships (``streamlit.proto``), ``websockets`` and ``requests``.
It covers what the load test needs (pages, uploads, radios, buttons, fragments), not Streamlit's
whole client: no forward-message cache, no components, no dialogs.
"""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from pathlib import Path

import requests
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import FileURLs, UploadedFileInfo
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

XSRF_COOKIE = "_streamlit_xsrf"
FINISHED = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_SUCCESSFULLY")
FRAGMENT_FINISHED = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_FRAGMENT_RUN_SUCCESSFULLY")


def element_kind(element: Element) -> str:
    """The element's type name: 'metric', 'markdown', 'file_uploader', 'plotly_chart', ..."""
    return element.WhichOneof("type") or ""


def element_text(element: Element) -> str:
    """Every string field of the element's message, joined (labels, bodies, captions, options)."""
    message = getattr(element, element_kind(element), None)
    parts: list[str] = []

    def walk(msg) -> None:
        for _, value in msg.ListFields():
            many = isinstance(value, Iterable) and not isinstance(value, (str, bytes)) and not hasattr(value, "ListFields")
            for item in (value if many else [value]):
                if isinstance(item, str):
                    parts.append(item)
                elif hasattr(item, "ListFields"):
                    walk(item)

    if message is not None:
        walk(message)
    return " ".join(parts)


class Page:
    """The elements a session shows once a script run is over: delta path -> Element."""

    def __init__(self, elements: dict[tuple[int, ...], Element]):
        self.elements = elements

    def find(self, kind: str, text: str = "") -> list[Element]:
        """Elements of ``kind`` whose text (see element_text) contains ``text``, in page order."""
        return [e for _, e in sorted(self.elements.items())
                if element_kind(e) == kind and text in element_text(e)]

    def widget(self, kind: str, label: str) -> Element:
        """The first widget of ``kind`` labelled ``label``; LookupError if there is none."""
        for element in self.find(kind):
            if getattr(element, kind).label == label:
                return element
        raise LookupError(f"no {kind} labelled {label!r} on the page")

    def problems(self) -> list[str]:
        """Exception boxes and error messages (what a person would see as something broken)."""
        found = [f"exception: {e.exception.type}: {e.exception.message[:200]}" for e in self.find("exception")]
        found += [f"error: {e.alert.body[:200]}" for e in self.find("alert")
                  if e.alert.format == e.alert.ERROR]
        return found

    def metric(self, label: str) -> str | None:
        """The value of the metric labelled ``label`` (e.g. 'Duration' -> '29.3 s'), else None."""
        values = [e.metric.body for e in self.find("metric") if e.metric.label == label]
        return values[0] if values else None


class Session:
    """One browser tab's session on a dashboard at ``url`` (http://host:port)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.session_id = ""
        self.widgets: dict[str, WidgetState] = {}
        """The widget states this tab sends with every run (what it has set, by widget id)."""
        self._socket = None
        self._reader: asyncio.Task | None = None
        self._fragments: dict[str, asyncio.Task] = {}
        self._elements: dict[tuple[int, ...], Element] = {}
        self._page = Page({})
        self._finished = asyncio.Condition()
        self._runs = 0
        self._file_urls: dict[str, asyncio.Future] = {}
        self._requests = itertools.count()
        self.page_name = ""
        self.media_misses = 0
        """Players whose file could not be fetched (a browser would show a broken player)."""
        self._background: set[asyncio.Task] = set()

    async def open(self, page: str = "", *, timeout: float = 120.0) -> Page:
        """Connect (XSRF cookie from the health endpoint, then the websocket) and run ``page``
        (its URL path, '' for the home page) as the first request of a tab opened on it."""
        await asyncio.to_thread(self.http.get, f"{self.url}/_stcore/health", timeout=timeout)
        token = self.http.cookies.get(XSRF_COOKIE, "")
        cookie = f"{XSRF_COOKIE}={token}" if token else ""
        self._socket = await websockets.connect(
            self.url.replace("http", "ws", 1) + "/_stcore/stream", max_size=None, open_timeout=timeout,
            subprotocols=["streamlit", token] if token else ["streamlit"], origin=self.url,
            additional_headers={"Cookie": cookie} if cookie else None)
        self._reader = asyncio.create_task(self._read())
        return await self.go_to(page, timeout=timeout)

    async def close(self) -> None:
        for task in [*self._fragments.values(), *self._background]:
            task.cancel()
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
        self.http.close()

    async def go_to(self, page: str, *, timeout: float = 120.0) -> Page:
        """Run the page at URL path ``page`` ('' = home), as a click on its sidebar link does."""
        self.page_name = page
        self.widgets.clear()  # a new page has new widgets
        return await self.run(timeout=timeout)

    async def run(self, widgets: Iterable[WidgetState] = (), *, until: Callable[[Page], bool] | None = None,
                  timeout: float = 120.0) -> Page:
        """Rerun the script with this tab's widget states plus ``widgets`` (trigger values, e.g. a
        button press, count for this run only) and return the page once a run is over and
        ``until(page)`` holds (default: the first full run after this request)."""
        states = dict(self.widgets)
        for state in widgets:
            states[state.id] = state
            if state.WhichOneof("value") not in ("trigger_value", "string_trigger_value", "json_trigger_value"):
                self.widgets[state.id] = state
        runs_before = self._runs
        await self._send_rerun(states.values())
        return await self._wait(lambda: self._runs > runs_before and (until is None or until(self._page)), timeout)

    async def upload(self, uploader: Element, path: Path, *, until: Callable[[Page], bool],
                     timeout: float = 300.0) -> Page:
        """Put the file at ``path`` into the file uploader ``uploader`` as a person dropping it there
        does: the uploader's previous file is removed (a run without it), the new one is uploaded
        over HTTP and the script reruns with it; returns the page once ``until(page)`` holds."""
        widget_id = uploader.file_uploader.id
        # The upload URL first: a response queued as a script run starts can be dropped by
        # Streamlit (AppSession._clear_queue), so none is asked for while a run is about to start.
        urls = await self._request_file_urls(path.name, timeout)
        previous = self.widgets.pop(widget_id, None)
        if previous is not None:
            for info in previous.file_uploader_state_value.uploaded_file_info:
                await asyncio.to_thread(self._http, "DELETE", info.file_urls.delete_url)
            await self._send_rerun(self.widgets.values())
        data = path.read_bytes()
        await asyncio.to_thread(self._http, "PUT", urls.upload_url, files={"file": (path.name, data)})
        state = WidgetState(id=widget_id)
        state.file_uploader_state_value.uploaded_file_info.append(
            UploadedFileInfo(file_id=urls.file_id, name=path.name, size=len(data), file_urls=urls))
        return await self.run([state], until=until, timeout=timeout)

    # --- the protocol --------------------------------------------------------------------------

    def _http(self, method: str, url: str, **kwargs) -> None:
        token = self.http.cookies.get(XSRF_COOKIE, "")
        response = self.http.request(method, url if url.startswith("http") else self.url + url,
                                     headers={"X-Xsrftoken": token} if token else {}, timeout=120, **kwargs)
        response.raise_for_status()

    async def _send(self, msg: BackMsg) -> None:
        await self._socket.send(msg.SerializeToString())

    async def _send_rerun(self, states: Iterable[WidgetState], *, fragment_id: str = "") -> None:
        msg = BackMsg()
        client = msg.rerun_script
        client.page_name = self.page_name
        client.widget_states.widgets.extend(states)
        if fragment_id:
            client.fragment_id, client.is_auto_rerun = fragment_id, True
        else:  # a full run: the fragments it draws register their refreshes again
            for task in self._fragments.values():
                task.cancel()
            self._fragments.clear()
        await self._send(msg)

    async def _request_file_urls(self, name: str, timeout: float) -> FileURLs:
        """Upload and delete URLs for one file; asked again if no answer comes within 10 s."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            request_id = str(next(self._requests))
            future = self._file_urls[request_id] = asyncio.get_running_loop().create_future()
            msg = BackMsg()
            msg.file_urls_request.request_id, msg.file_urls_request.session_id = request_id, self.session_id
            msg.file_urls_request.file_names.append(name)
            await self._send(msg)
            left = deadline - asyncio.get_running_loop().time()
            try:
                return await asyncio.wait_for(future, min(10.0, max(left, 0.1)))
            except asyncio.TimeoutError:
                self._file_urls.pop(request_id, None)
                if asyncio.get_running_loop().time() >= deadline:
                    raise

    async def wait_for(self, until: Callable[[Page], bool], *, timeout: float = 120.0) -> Page:
        """The page once a run (a full or a fragment one) is over and ``until(page)`` holds."""
        return await self._wait(lambda: until(self._page), timeout)

    @property
    def page(self) -> Page:
        """The page as the last finished run left it."""
        return self._page

    async def _wait(self, done: Callable[[], bool], timeout: float) -> Page:
        async with self._finished:
            await asyncio.wait_for(self._finished.wait_for(lambda: done() or self._reader.done()), timeout)
        if self._reader.done():
            raise ConnectionError(f"the server closed the session ({self._reader.exception() or 'socket closed'})")
        return self._page

    async def _refresh(self, fragment_id: str, interval: float) -> None:
        """Rerun one fragment every ``interval`` s, as the browser does for run_every fragments."""
        while True:
            await asyncio.sleep(interval)
            await self._send_rerun(self.widgets.values(), fragment_id=fragment_id)

    async def _read(self) -> None:
        touched: set[tuple[int, ...]] = set()
        async for raw in self._socket:
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.session_id = msg.new_session.initialize.session_id or self.session_id
                touched = set()  # a run starts (a full or a fragment run)
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                path = tuple(msg.metadata.delta_path)
                self._elements[path] = msg.delta.new_element
                touched.add(path)
                kind_of = element_kind(msg.delta.new_element)
                if kind_of in ("audio", "video") and getattr(msg.delta.new_element, kind_of).url:
                    self._background.add(asyncio.create_task(
                        self._fetch_media(getattr(msg.delta.new_element, kind_of).url)))
            elif kind == "auto_rerun":
                fragment = msg.auto_rerun.fragment_id
                if fragment not in self._fragments:
                    self._fragments[fragment] = asyncio.create_task(self._refresh(fragment, msg.auto_rerun.interval))
            elif kind == "stop_auto_rerun":
                for fragment in msg.stop_auto_rerun.fragment_ids:
                    task = self._fragments.pop(fragment, None)
                    if task is not None:
                        task.cancel()
            elif kind == "file_urls_response":
                future = self._file_urls.pop(msg.file_urls_response.response_id, None)
                if future is not None and not future.done():
                    if msg.file_urls_response.error_msg:
                        future.set_exception(RuntimeError(msg.file_urls_response.error_msg))
                    else:
                        future.set_result(msg.file_urls_response.file_urls[0])
            elif kind == "script_finished" and msg.script_finished in (FINISHED, FRAGMENT_FINISHED):
                if msg.script_finished == FINISHED:  # what a full run did not draw is gone
                    self._elements = {path: e for path, e in self._elements.items() if path in touched}
                async with self._finished:
                    self._page = Page(dict(self._elements))
                    self._runs += msg.script_finished == FINISHED
                    self._finished.notify_all()
        async with self._finished:
            self._finished.notify_all()

    async def _fetch_media(self, url: str) -> None:
        """Fetch a player's file once, as the browser does when it shows the player; one that
        cannot be had counts in ``media_misses``."""
        try:
            await asyncio.to_thread(self._http, "GET", url)
        except requests.RequestException:
            self.media_misses += 1
        finally:
            self._background.discard(asyncio.current_task())
