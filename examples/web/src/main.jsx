// A pricing page on the autumn-js hooks. The Python app's identify() reads the demo_user cookie set
// by its /login route; without it the hooks get a no_customer_id error and the page asks to sign in.
import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import { AutumnProvider, useCustomer, useListEvents, useListPlans } from "autumn-js/react";

function SignIn() {
  return (
    <form method="post" action="/login">
      <label>
        Customer id <input name="user" defaultValue="demo-customer" />
      </label>
      <button type="submit">Sign in</button>
    </form>
  );
}

function Plans({ attach }) {
  const { data: plans, error } = useListPlans();
  if (error) return <p>Could not load plans: {error.message}</p>;
  if (!plans) return <p>Loading plans…</p>;
  return (
    <ul>
      {plans.map((plan) => (
        <li key={plan.id}>
          <strong>{plan.name}</strong> {plan.price ? `${plan.price.amount} / ${plan.price.interval}` : "free"}{" "}
          <button onClick={() => attach({ planId: plan.id })}>Choose</button>
        </li>
      ))}
    </ul>
  );
}

function Usage() {
  const { list, hasMore, nextPage, prevPage, page } = useListEvents({ limit: 10 });
  return (
    <section>
      <h3>Recent usage (page {page + 1})</h3>
      <ul>
        {(list ?? []).map((event) => (
          <li key={event.id}>
            {new Date(event.timestamp).toLocaleString()}: {event.featureId} × {event.value}
          </li>
        ))}
      </ul>
      <button onClick={prevPage} disabled={page === 0}>Previous</button>
      <button onClick={nextPage} disabled={!hasMore}>Next</button>
    </section>
  );
}

function Account() {
  const { data: customer, error, isLoading, attach, check, openCustomerPortal } = useCustomer();
  const [feature, setFeature] = useState("messages");
  if (isLoading) return <p>Loading…</p>;
  if (error?.code === "no_customer_id") return <SignIn />;
  if (error) return <p>Error: {error.message}</p>;
  const access = check({ featureId: feature });
  return (
    <>
      <h2>Hello {customer.name ?? customer.id}</h2>
      <h3>Balances</h3>
      <ul>
        {Object.entries(customer.balances).map(([featureId, balance]) => (
          <li key={featureId}>
            {balance.feature?.name ?? featureId}: {balance.unlimited ? "unlimited" : `${balance.remaining} of ${balance.granted}`}
          </li>
        ))}
      </ul>
      <p>
        Can use <input value={feature} onChange={(event) => setFeature(event.target.value)} />?{" "}
        <strong>{access.allowed ? "yes" : "no"}</strong>
      </p>
      <button onClick={() => openCustomerPortal()}>Manage billing</button>
      <h3>Plans</h3>
      <Plans attach={attach} />
      <Usage />
    </>
  );
}

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <AutumnProvider>
      <main>
        <h1>Autumn + Python</h1>
        <Account />
      </main>
    </AutumnProvider>
  </StrictMode>,
);
