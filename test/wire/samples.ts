/**
 * Realistic values of every object type Kiln's server sends, typed with the generated
 * interfaces (so a field renamed in the XSD breaks the build here, not in production).
 */
import type {
  APIKeyPair,
  BundleRestriction,
  ContainerTemplate,
  CredAccountDocker,
  CredAccountOpenShift,
  Distribution,
  Image,
  ImageFormat,
  ImagePkg,
  MySoftware,
  OpStatus,
  Pkg,
  PublishImageDocker,
  RootValues,
  ServiceStatus,
  SoftwareArtifact,
  TargetFormat,
  TargetPlatform,
  UForgeError,
  User,
} from "../../src/wire/index.js";

const created = new Date("2026-03-01T09:30:00.000Z");
const lastModified = new Date("2026-03-02T17:45:12.345Z");
const stamps = { created, lastModified };

export const serviceStatus: ServiceStatus = { alive: true, version: "0.1.0", serviceLoad: 3 };

export const user: User = {
  ...stamps,
  dbId: 2,
  digest: "5f0c2e8a",
  loginName: "alice",
  active: true,
  email: "alice@example.org",
  firstName: "Alice",
  surname: "Liddell & Co <dev>",
  admin: false,
  baseApiKeysUri: "users/alice/apikeys",
  baseCredAccountsUri: "users/alice/accounts",
  baseMySoftwareLibraryUri: "users/alice/mysoftware",
  uri: "users/alice",
};

export const apiKeyPair: APIKeyPair = {
  ...stamps,
  dbId: 7,
  name: "ci",
  description: "key used by the CI pipeline",
  publicKey: "Rk9PQkFSQkFaUVVYUVVVWA",
  secretKey: "c2VjcmV0LXNlY3JldC1zZWNyZXQ",
  uri: "users/alice/apikeys/7",
};

export const bundleRestriction: BundleRestriction = {
  ...stamps,
  dbId: 3,
  uri: "users/alice/mysoftware/3/restriction/3",
  parentUri: "users/alice/mysoftware/3",
  restrictionRule: "Distribution#name=Debian && TargetFormat#type=container",
  distributionsUri: "users/alice/mysoftware/3/restriction/3/distributions",
};

export const mySoftware: MySoftware = {
  ...stamps,
  dbId: 3,
  name: "hello",
  version: "1.0",
  description: "Hello, world — with \"quotes\", <angle brackets> & ampersands\r\nand a CRLF",
  defaultInstallLocation: "/opt/hello",
  size: 123456,
  revision: 2,
  bundleRestriction,
  artifactsUri: "users/alice/mysoftware/3/artifacts",
  uri: "users/alice/mysoftware/3",
  containerTemplatesUri: "users/alice/mysoftware/3/templates",
  imported: false,
};

export const softwareArtifact: SoftwareArtifact = {
  ...stamps,
  dbId: 11,
  uri: "users/alice/mysoftware/3/artifacts/11",
  parentUri: "users/alice/mysoftware/3",
  name: "app",
  type: "folder",
  installLocation: "/opt/hello",
  subSoftwareArtifacts: [
    {
      ...stamps,
      dbId: 12,
      sha256sum: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      size: 4,
      uploaded: true,
      uploadedTime: lastModified,
      uri: "users/alice/mysoftware/3/artifacts/12",
      binaryUri: "users/alice/mysoftware/3/artifacts/12/bin/hello.tar.gz",
      parentUri: "users/alice/mysoftware/3/artifacts/11",
      extract: true,
      install: false,
      name: "hello.tar.gz",
      installLocation: "/opt/hello",
      type: "file",
      params: "owner=root;group=root;rights=0755",
      subSoftwareArtifacts: [],
    },
    {
      ...stamps,
      dbId: 13,
      uri: "users/alice/mysoftware/3/artifacts/13",
      name: "jq_1.6-2.1_amd64.deb",
      install: true,
      extract: false,
      type: "file",
    },
  ],
};

export const distribution: Distribution = {
  ...stamps,
  dbId: 1,
  active: true,
  arch: "x86_64",
  basePkgsUri: "distributions/1/pkgs",
  family: "linux",
  name: "Debian",
  pkgType: "deb",
  uri: "distributions/1",
  version: "12",
  visible: true,
};

export const pkg: Pkg = {
  dbId: 40,
  arch: "amd64",
  fullName: "jq_1.6-2.1_amd64.deb",
  name: "jq",
  release: "2.1",
  size: 70612,
  uri: "distributions/1/pkgs/40",
  version: "1.6",
  epoch: 0,
  pkgBuildDate: new Date("2023-01-10T00:00:00Z"),
};

export const imageFormat: ImageFormat = { ...stamps, dbId: 9, access: true, active: true, name: "docker", uri: "users/alice/formats/9" };

export const targetPlatform: TargetPlatform = {
  ...stamps,
  dbId: 5,
  name: "Docker",
  type: "docker",
  targetFormatsUri: "users/alice/targetplatforms/5/targetformats",
  access: true,
  active: true,
  uri: "users/alice/targetplatforms/5",
};

export const targetFormat: TargetFormat = {
  ...stamps,
  dbId: 4,
  name: "Docker",
  format: imageFormat,
  type: "container",
  credAccountType: "docker",
  targetPlatformsUri: "users/alice/targetformats/4/targetplatforms",
  access: true,
  active: true,
  uri: "users/alice/targetformats/4",
};

export const credAccountDocker: CredAccountDocker = {
  xsiType: "CredAccountDocker",
  ...stamps,
  dbId: 2,
  name: "local registry",
  uri: "users/alice/accounts/2",
  targetPlatform: { name: "Docker", type: "docker" },
  endpointUrl: "http://127.0.0.1:5000",
  login: "alice",
  password: "s3cr&t<pw>",
};

export const credAccountOpenShift: CredAccountOpenShift = {
  xsiType: "CredAccountOpenShift",
  ...stamps,
  dbId: 3,
  name: "openshift",
  uri: "users/alice/accounts/3",
  registryUrl: "https://registry.apps.example.org",
  token: "sha256~token",
};

export const status: OpStatus = {
  ...stamps,
  dbId: 21,
  bytesLoaded: 1048576,
  bytesTotal: 4194304,
  cancelled: false,
  complete: false,
  error: false,
  eta: new Date("2026-03-02T17:46:00Z"),
  message: "unpacking packages",
  percentage: 42,
  uri: "users/alice/mysoftware/3/templates/7/images/8/status",
};

export const failedStatus: OpStatus = {
  dbId: 22,
  cancelled: false,
  complete: false,
  error: true,
  errorMessage: "could not resolve package foo",
  detailedError: true,
  detailedErrorMsg: "ResolveFailed: foo has no installation candidate\n  (required by hello)",
  percentage: 100,
};

export const image: Image = {
  ...stamps,
  dbId: 8,
  sha256sum: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  size: 31457280,
  status: { ...status, complete: true, percentage: 100, message: "done" },
  compress: true,
  distributionName: "Debian 12 x86_64",
  downloadKey: "0d9c3b3e-5d1c-4a5f-9b0e-3c7b1f8d2a41",
  downloadUri: "users/alice/mysoftware/3/templates/7/images/8/downloads",
  fileExtension: "tar.gz",
  fileName: "hello-1.0.tar.gz",
  targetFormat,
  name: "hello",
  statusUri: "users/alice/mysoftware/3/templates/7/images/8/status",
  uri: "users/alice/mysoftware/3/templates/7/images/8",
  version: "1.0",
  entrypoint: '["/usr/sbin/nginx", "-g", "daemon off;"]',
};

export const containerTemplate: ContainerTemplate = {
  ...stamps,
  dbId: 7,
  digest: "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c",
  uri: "users/alice/mysoftware/3/templates/7",
  distribution: { arch: "x86_64", name: "Debian", version: "12", uri: "distributions/1" },
  images: [image],
  imagesUri: "users/alice/mysoftware/3/templates/7/images",
  formatsUri: "users/alice/mysoftware/3/templates/7/formats",
};

export const publishImage: PublishImageDocker = {
  xsiType: "PublishImageDocker",
  ...stamps,
  dbId: 30,
  status: { complete: true, percentage: 100, message: "pushed" },
  credAccount: { xsiType: "CredAccountDocker", uri: "users/alice/accounts/2" },
  imageUri: "users/alice/mysoftware/3/templates/7/images/8",
  cloudId: "127.0.0.1:5000/alice/hello:1.0",
  uri: "users/alice/mysoftware/3/templates/7/images/8/pimages/30",
  namespace: "alice",
  repositoryName: "hello",
  tagName: "1.0",
};

export const imagePkg: ImagePkg = { level: 0, native_from_distribution: true, pkg };

export const uforgeError: UForgeError = {
  localizedErrorMsg: { message: "no container template 99", messageId: "NotFound", parameters: ["99"] },
  requestMethod: "GET",
  requestUri: "/api/users/alice/mysoftware/3/templates/99",
  statusCode: 404,
  timestamp: lastModified,
};

type Sample = { [R in keyof RootValues]: [R, RootValues[R]] }[keyof RootValues];

/** Every root element the server answers with, with a realistic value. */
export const samples: Sample[] = [
  ["serviceStatus", serviceStatus],
  ["user", user],
  ["users", { total: 2, users: [user, { loginName: "root", admin: true, active: true, uri: "users/root" }] }],
  ["apiKeyPair", apiKeyPair],
  ["apiKeyPairs", { total: 1, apiKeyPairs: [apiKeyPair] }],
  ["mySoftware", mySoftware],
  ["mySoftwareList", { total: 1, mySoftwareList: [mySoftware] }],
  ["softwareArtifact", softwareArtifact],
  ["softwareArtifacts", { total: 1, softwareArtifacts: [softwareArtifact] }],
  ["bundleRestriction", bundleRestriction],
  ["distribution", distribution],
  ["distributions", { total: 1, distributions: [distribution] }],
  ["package", pkg],
  ["packages", { pkgs: [pkg, { ...pkg, dbId: 41, name: "libjq1", uri: "distributions/1/pkgs/41" }] }],
  ["credAccount", credAccountDocker],
  ["credAccount", credAccountOpenShift],
  ["credAccounts", { total: 2, credAccounts: [credAccountDocker, credAccountOpenShift] }],
  ["targetFormat", targetFormat],
  ["targetFormats", { total: 1, targetFormats: [targetFormat] }],
  ["targetPlatforms", { total: 1, targetPlatforms: [targetPlatform] }],
  ["imageFormats", { total: 1, imageFormats: [imageFormat] }],
  ["containerTemplate", containerTemplate],
  ["containerTemplates", { total: 2, containerTemplates: [containerTemplate, { dbId: 9, uri: "users/alice/mysoftware/3/templates/9", images: [] }] }],
  ["image", image],
  ["images", { total: 1, images: [image] }],
  ["status", status],
  ["statuses", { total: 2, statuses: [status, failedStatus] }],
  ["publishImage", publishImage],
  ["publishImages", { total: 1, publishImages: [publishImage] }],
  ["imagePkgs", { total: 1, imagePkgs: [imagePkg] }],
  ["uforgeError", uforgeError],
];
