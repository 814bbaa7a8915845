// nginx serving one file, the anchor the download benchmarks compare Kiln's downloads with: a
// static server with sendfile, in `work`, on a random loopback port.
import { spawn } from "node:child_process";
import { linkSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Serves `file` (hard-linked, so it must be on the same filesystem as `work`) as `/<name>`;
 * returns its URL and the nginx process (kill it when done).
 */
export async function serveWithNginx(work, file, name) {
  const root = path.join(work, "nginx-root");
  mkdirSync(root, { recursive: true });
  linkSync(file, path.join(root, name));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const conf = path.join(work, "nginx.conf");
  const tmp = path.join(work, "nginx-tmp");
  writeFileSync(
    conf,
    `user root;\ndaemon off;\nworker_processes 1;\npid ${work}/nginx.pid;\nerror_log ${work}/nginx-error.log;\nevents { worker_connections 64; }\nhttp {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  client_body_temp_path ${tmp};\n  proxy_temp_path ${tmp};\n  fastcgi_temp_path ${tmp};\n  uwsgi_temp_path ${tmp};\n  scgi_temp_path ${tmp};\n  server { listen 127.0.0.1:${port}; root ${root}; }\n}\n`,
  );
  const process = spawn("nginx", ["-c", conf, "-p", work], { stdio: "ignore" });
  await sleep(500);
  return { url: `http://127.0.0.1:${port}/${name}`, process };
}
