/** The sign-in form: the only page a visitor without a session sees. */
import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { messageOf, signIn, type Session } from "../api.js";

export function SignIn(props: { onSignedIn: (s: Session) => void; notice?: string | undefined }): JSX.Element {
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => {
    document.title = "Sign in · Kiln";
    first.current?.focus();
  }, []);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      props.onSignedIn(await signIn(login, password));
    } catch (err) {
      setError(messageOf(err));
      setBusy(false);
    }
  };
  return (
    <main class="sign-in" id="main">
      <form onSubmit={submit} aria-labelledby="sign-in-title">
        <p class="brand" aria-hidden="true">
          Kiln
        </p>
        <h1 id="sign-in-title">Sign in to Kiln</h1>
        {props.notice && <p class="notice">{props.notice}</p>}
        <div class="field">
          <label for="login">User name</label>
          <input id="login" name="username" autocomplete="username" required ref={first} value={login} onInput={(e) => setLogin(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="password">Password</label>
          <input id="password" name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </div>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
