/** Cloud accounts: the registries images are published to. Secrets go in, never come back. */
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { api, messageOf, type CloudAccount } from "../api.js";
import { ConfirmButton, ErrorText, Field, Loading, Page, useData } from "../ui.js";

export function AccountsPage(props: { login: string }): JSX.Element {
  const accounts = useData(`accounts:${props.login}`, () => api<{ credAccounts?: CloudAccount[] }>("GET", `users/${props.login}/accounts`));
  const list = accounts.data?.credAccounts ?? [];
  return (
    <Page title="Cloud accounts">
      <p class="hint">The registries Kiln publishes images to. Passwords and tokens are stored encrypted and never shown again.</p>
      <ErrorText message={accounts.error} />
      {!accounts.data && !accounts.error && <Loading what="your accounts" />}
      {accounts.data && list.length === 0 && <p class="empty">No cloud account yet.</p>}
      {list.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Cloud accounts</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Type</th>
                <th scope="col">Registry</th>
                <th scope="col">Login</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((a) => (
                <tr key={a.uri}>
                  <td>{a.name}</td>
                  <td>{a.xsiType === "CredAccountDocker" ? "Docker registry" : "OpenShift"}</td>
                  <td class="mono">{a.endpointUrl ?? a.registryUrl}</td>
                  <td>{a.login ?? "token"}</td>
                  <td>
                    <ConfirmButton label="Delete" name={`Delete ${a.name}`} question={`Delete the account ${a.name}?`} confirmLabel="Delete" onConfirm={async () => {
                      await api("DELETE", a.uri);
                      accounts.reload();
                    }} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <NewAccount login={props.login} onCreated={accounts.reload} />
    </Page>
  );
}

function NewAccount(props: { login: string; onCreated: () => void }): JSX.Element {
  const [type, setType] = useState<"docker" | "openshift">("docker");
  const [name, setName] = useState("");
  const [url, setUrl] = useState("");
  const [login, setLogin] = useState("");
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<string>();
  const [status, setStatus] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setStatus("");
    try {
      await api(
        "POST",
        `users/${props.login}/accounts`,
        type === "docker"
          ? { xsiType: "CredAccountDocker", name: name.trim(), endpointUrl: url.trim(), login: login.trim(), password: secret }
          : { xsiType: "CredAccountOpenShift", name: name.trim(), registryUrl: url.trim(), token: secret },
      );
      setStatus(`Account ${name.trim()} created.`);
      setName("");
      setUrl("");
      setLogin("");
      setSecret("");
      props.onCreated();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="new-account-title">
      <h2 id="new-account-title">New cloud account</h2>
      <form onSubmit={submit} class="stack">
        <Field label="Type">
          {({ id }) => (
            <select id={id} value={type} onChange={(e) => setType(e.currentTarget.value as "docker" | "openshift")}>
              <option value="docker">Docker registry</option>
              <option value="openshift">OpenShift</option>
            </select>
          )}
        </Field>
        <Field label="Name">{({ id }) => <input id={id} required value={name} onInput={(e) => setName(e.currentTarget.value)} />}</Field>
        <Field label="Registry URL" hint="e.g. https://registry.example.com or http://127.0.0.1:5000">
          {({ id, describedBy }) => <input id={id} required inputMode="url" aria-describedby={describedBy} value={url} onInput={(e) => setUrl(e.currentTarget.value)} />}
        </Field>
        {type === "docker" && <Field label="Login">{({ id }) => <input id={id} required autocomplete="off" value={login} onInput={(e) => setLogin(e.currentTarget.value)} />}</Field>}
        <Field label={type === "docker" ? "Password" : "Token"}>
          {({ id }) => <input id={id} type="password" required autocomplete="new-password" value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />}
        </Field>
        <ErrorText message={error} />
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy}>
            Create account
          </button>
          <span role="status" class="muted">
            {status}
          </span>
        </div>
      </form>
    </section>
  );
}
