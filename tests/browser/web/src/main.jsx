// A test page for the real autumn-js React hooks, built twice (vite.config.js): with autumn-js
// 1.2.28 and with the newest 1.x. The query string picks the panels and their parameters, so one
// build serves every browser test:
//   customer  id sent in the x-test-customer header (the test apps' identify reads it; absent => None)
//   backend   backendUrl for a handler on another origin (CORS, credentials included)
//   view      comma-separated panels: customer, plans, events, aggregate, entity, referrals
//   feature, plan, entity, program, limit: parameters of those panels
import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import {
  AutumnProvider,
  useAggregateEvents,
  useCustomer,
  useEntity,
  useListEvents,
  useListPlans,
  useReferrals,
} from "autumn-js/react";

const params = new URLSearchParams(window.location.search);
const param = (name, fallback = "") => params.get(name) ?? fallback;

const describeError = (error) => (error ? `${error.code}:${error.statusCode}:${error.message}` : "");
const show = (value) => (value === undefined ? "" : JSON.stringify(value));

function CustomerPanel() {
  const { data, error, isLoading, check, attach, openCustomerPortal } = useCustomer();
  const [actionResult, setActionResult] = useState("");
  const [actionError, setActionError] = useState("");
  const feature = param("feature", "messages");
  const run = (action) => async () => {
    setActionError("");
    try {
      setActionResult(show(await action()));
    } catch (err) {
      setActionError(describeError(err));
    }
  };
  return (
    <section>
      <h2>useCustomer</h2>
      <p data-testid="customer-state">{isLoading ? "loading" : error ? "error" : "ready"}</p>
      <p data-testid="customer-error">{describeError(error)}</p>
      <p data-testid="customer-id">{data?.id ?? ""}</p>
      <p data-testid="customer-name">{data?.name ?? ""}</p>
      <pre data-testid="customer-balances">{show(data?.balances)}</pre>
      <pre data-testid="customer-subscriptions">{show(data?.subscriptions?.map((s) => s.planId))}</pre>
      <pre data-testid="check-result">{data ? show(check({ featureId: feature })) : ""}</pre>
      <button data-testid="attach-button" onClick={run(() => attach({ planId: param("plan") }))}>
        attach
      </button>
      <button data-testid="portal-button" onClick={run(() => openCustomerPortal({ returnUrl: window.location.href }))}>
        portal
      </button>
      <pre data-testid="action-result">{actionResult}</pre>
      <p data-testid="action-error">{actionError}</p>
    </section>
  );
}

function PlansPanel() {
  const { data, error } = useListPlans();
  return (
    <section>
      <h2>useListPlans</h2>
      <p data-testid="plans-error">{describeError(error)}</p>
      <pre data-testid="plans-ids">{show(data?.map((plan) => plan.id))}</pre>
      <pre data-testid="plans-json">{show(data)}</pre>
    </section>
  );
}

function EventsPanel() {
  const limit = Number(param("limit", "2"));
  const { list, error, hasMore, page, nextPage, prevPage, isFetching } = useListEvents({ limit });
  return (
    <section>
      <h2>useListEvents</h2>
      <p data-testid="events-error">{describeError(error)}</p>
      <p data-testid="events-page">{isFetching ? "" : String(page)}</p>
      <p data-testid="events-has-more">{String(hasMore)}</p>
      <pre data-testid="events-list">{show(list?.map((event) => ({ id: event.id, featureId: event.featureId, value: event.value })))}</pre>
      <button data-testid="events-next" onClick={nextPage}>next</button>
      <button data-testid="events-prev" onClick={prevPage}>previous</button>
    </section>
  );
}

function AggregatePanel() {
  const featureId = param("feature", "messages");
  const { list, total, error } = useAggregateEvents({ featureId, range: "30d" });
  return (
    <section>
      <h2>useAggregateEvents</h2>
      <p data-testid="aggregate-error">{describeError(error)}</p>
      <pre data-testid="aggregate-total">{show(total)}</pre>
      <pre data-testid="aggregate-periods">{show(list?.length)}</pre>
      <pre data-testid="aggregate-sum">{show(list?.reduce((sum, period) => sum + (period.values?.[featureId] ?? 0), 0))}</pre>
    </section>
  );
}

function EntityPanel() {
  const { data, error } = useEntity({ entityId: param("entity") });
  return (
    <section>
      <h2>useEntity</h2>
      <p data-testid="entity-error">{describeError(error)}</p>
      <p data-testid="entity-id">{data?.id ?? ""}</p>
      <p data-testid="entity-customer-id">{data?.customerId ?? ""}</p>
      <p data-testid="entity-feature-id">{data?.featureId ?? ""}</p>
      <pre data-testid="entity-balances">{show(data?.balances)}</pre>
    </section>
  );
}

function ReferralsPanel() {
  const { data, error, refetch, redeemCode } = useReferrals({ programId: param("program") });
  const [code, setCode] = useState("");
  const [redeemed, setRedeemed] = useState("");
  const [redeemError, setRedeemError] = useState("");
  const redeem = async () => {
    try {
      setRedeemed(show(await redeemCode({ code })));
    } catch (err) {
      setRedeemError(describeError(err));
    }
  };
  return (
    <section>
      <h2>useReferrals</h2>
      <button data-testid="referral-create" onClick={() => refetch()}>create code</button>
      <p data-testid="referral-error">{describeError(error)}</p>
      <p data-testid="referral-code">{data?.code ?? ""}</p>
      <p data-testid="referral-owner">{data?.customerId ?? ""}</p>
      <input data-testid="redeem-input" value={code} onChange={(event) => setCode(event.target.value)} />
      <button data-testid="redeem-button" onClick={redeem}>redeem</button>
      <pre data-testid="redeem-result">{redeemed}</pre>
      <p data-testid="redeem-error">{redeemError}</p>
    </section>
  );
}

const PANELS = {
  customer: CustomerPanel,
  plans: PlansPanel,
  events: EventsPanel,
  aggregate: AggregatePanel,
  entity: EntityPanel,
  referrals: ReferralsPanel,
};

function App() {
  const views = param("view", "customer").split(",").filter((name) => name in PANELS);
  const customer = param("customer");
  const backend = param("backend");
  return (
    <AutumnProvider
      backendUrl={backend || undefined}
      includeCredentials={Boolean(backend)}
      headers={customer ? { "x-test-customer": customer } : {}}
    >
      <main data-testid="app">
        <p data-testid="autumn-js-version">{__AUTUMN_JS_VERSION__}</p>
        {views.map((name) => {
          const Panel = PANELS[name];
          return <Panel key={name} />;
        })}
      </main>
    </AutumnProvider>
  );
}

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
