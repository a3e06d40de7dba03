// The OAuth redirect URI of the site: hands the authorization server's answer back to the page that
// started the sign-in. That page (pyodide_transport._browser) checks `state` and exchanges the code.
//  * popup: postMessage to the opener (same origin only) and a BroadcastChannel (for openers that
//    lost their handle to this window), then close;
//  * redirect fallback: the page stored where to return under RETURN_KEY + state in this tab's
//    sessionStorage; keep the answer under CALLBACK_KEY and go back there (same origin only).
(() => {
  const CHANNEL = 'pyodide-transport-oauth';
  const RETURN_KEY = 'pyodide-transport.oauth.return:';
  const CALLBACK_KEY = 'pyodide-transport.oauth.callback';
  const status = document.querySelector('[data-testid="callback-status"]');
  const say = (text) => { status.textContent = text; };
  const params = new URLSearchParams(location.search);
  const state = params.get('state') || '';
  const url = location.href;
  const refused = params.get('error');
  const outcome = refused ? `The sign-in was refused (${refused}).` : 'Signed in.';

  let back = null;
  try { back = state ? sessionStorage.getItem(RETURN_KEY + state) : null; } catch (e) { back = null; }
  if (back) {
    sessionStorage.removeItem(RETURN_KEY + state);
    const target = new URL(back, location.href);
    if (target.origin !== location.origin) {
      say('The page to return to is on another origin: not going there.');
      return;
    }
    sessionStorage.setItem(CALLBACK_KEY, url);
    say(`${outcome} Going back…`);
    location.replace(target.href);
    return;
  }
  const message = { type: 'pyodide-transport:oauth', state, url };
  let handed = false;
  if (window.opener && !window.opener.closed) {
    try { window.opener.postMessage(message, location.origin); handed = true; } catch (e) { /* cross-origin opener */ }
  }
  try {
    const channel = new BroadcastChannel(CHANNEL);
    channel.postMessage(message);
    channel.close();
    handed = true;
  } catch (e) { /* no BroadcastChannel */ }
  if (!handed) {
    say('No page is waiting for this sign-in: start it again from the explorer.');
    return;
  }
  say(`${outcome} You can close this window.`);
  setTimeout(() => window.close(), 200);
})();
