/**
 * The Kiln console: a small single-page app over Kiln's JSON API, served by Kiln itself. The page
 * arrives with its session (or none) in `#kiln-session`; signed out, it shows the sign-in form.
 */
import { render, type JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { bindSession, messageOf, signOut, type Session } from "./api.js";
import { connectLive } from "./live.js";
import { AccountsPage } from "./pages/accounts.js";
import { BundlePage } from "./pages/bundle.js";
import { ImagePage, ImagesPage } from "./pages/images.js";
import { Library } from "./pages/library.js";
import { SignIn } from "./pages/sign-in.js";
import { TemplatePage } from "./pages/template.js";
import { Link, Page, navigate, usePath } from "./ui.js";

function initialSession(): Session | null {
  const el = document.getElementById("kiln-session");
  try {
    return el?.textContent ? (JSON.parse(el.textContent) as Session | null) : null;
  } catch {
    return null;
  }
}

function Route(props: { path: string; login: string }): JSX.Element {
  const { path, login } = props;
  let m: RegExpExecArray | null;
  if (path === "/" || path === "/library") return <Library login={login} />;
  if ((m = /^\/library\/(\d+)\/templates\/(\d+)$/.exec(path))) return <TemplatePage key={path} login={login} msid={m[1]!} tid={m[2]!} />;
  if ((m = /^\/library\/(\d+)$/.exec(path))) return <BundlePage key={path} login={login} msid={m[1]!} />;
  if (path === "/images") return <ImagesPage login={login} />;
  if ((m = /^\/images\/(\d+)\/(\d+)\/(\d+)$/.exec(path))) return <ImagePage key={path} login={login} msid={m[1]!} tid={m[2]!} iid={m[3]!} />;
  if (path === "/accounts") return <AccountsPage login={login} />;
  return (
    <Page title="Not found">
      <p>
        There is no page at <code>{path}</code>. Go to the <Link href="/library">Software library</Link>.
      </p>
    </Page>
  );
}

const SECTIONS = [
  { href: "/library", label: "Software library", match: (p: string) => p === "/" || p.startsWith("/library") },
  { href: "/images", label: "Images", match: (p: string) => p.startsWith("/images") },
  { href: "/accounts", label: "Cloud accounts", match: (p: string) => p.startsWith("/accounts") },
];

function App(): JSX.Element {
  const [session, setSession] = useState<Session | null>(initialSession);
  const [notice, setNotice] = useState<string>();
  const [error, setError] = useState<string>();
  const path = usePath();
  const ended = (): void => {
    setSession(null);
    setNotice("Your session has ended: sign in again.");
  };
  bindSession(session, ended);
  useEffect(() => {
    connectLive(session?.login, ended);
    return () => connectLive(undefined, () => undefined);
  }, [session?.login]);

  if (!session) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(s) => {
          setNotice(undefined);
          setSession(s);
          if (path === "/") navigate("/library", true);
        }}
      />
    );
  }
  const doSignOut = async (): Promise<void> => {
    try {
      await signOut();
      connectLive(undefined, () => undefined);
      setNotice("You have signed out.");
      setSession(null);
    } catch (err) {
      setError(messageOf(err));
    }
  };
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link href="/library" class="brand">
          Kiln
        </Link>
        <nav aria-label="Main">
          <ul>
            {SECTIONS.map((s) => (
              <li key={s.href}>
                <Link href={s.href} aria-current={s.match(path) ? "page" : undefined}>
                  {s.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="user">
          <span class="muted">{session.login}</span>
          <button type="button" onClick={() => void doSignOut()}>
            Sign out
          </button>
        </div>
      </header>
      {error && (
        <p role="alert" class="error banner">
          {error}
        </p>
      )}
      <main id="main">
        <Route path={path} login={session.login} />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
