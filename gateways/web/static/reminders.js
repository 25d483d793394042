// The reminders panel and the audit trail: GET /reminders (open as of the slider's instant; "today" is the
// server's now, so a reminder emitted in this very minute shows), items by name and customer; a click on a
// reminder — or on a stuck deal — opens the item's audit trail: a deal's own history (who, when, from which
// stage to which, why), a ticket's entries in its customer's timeline, a lead's state. Uses dashboard.js.
"use strict";

const SHOWN_REMINDERS = 50; // one page; the count says how many there are
const TIMELINE_PAGES = 10; // a customer's timeline read for a ticket's entries: at most 10 pages of 500
let auditShown = 0; // the latest click: an older answer arriving later is dropped
const dealNames = new Map(); // deal id → promise of { item: its title, customer: its customer's company or name }
const customerNames = new Map(); // customer id → promise of its company (or name)

async function refreshReminders() {
  if (!$("token").value) return;
  const params = new URLSearchParams({ limit: String(SHOWN_REMINDERS) });
  if (Number($("as-of").value) !== 0) params.set("as_of", asOf().toISOString());
  if ($("owner").value.trim()) params.set("owner", $("owner").value.trim());
  try {
    const answer = await api(`/reminders?${params}`);
    const page = answer.reminders;
    $("reminders-count").textContent = `(${page.items.length} of ${page.total})`;
    $("reminders-caption").className = "caption";
    $("reminders-caption").textContent = `open as of ${localTime(answer.as_of)}` +
      (answer.owner ? ` · owner ${answer.owner}` : "");
    drawReminders(page.items);
    $("reminders-panel").dataset.loadedAsOf = answer.as_of;
  } catch (error) {
    $("reminders-caption").className = "caption error";
    $("reminders-caption").textContent = error.message;
  }
}

function drawReminders(reminders) {
  const trs = fillRows($("reminders").tBodies[0], reminders.map((r) => [r.item, r.customer || "–",
    `${r.pipeline} / ${r.stage}`, r.threshold, r.owner || "–", localTime(r.due_at)]));
  trs.forEach((tr, i) => {
    tr.dataset.kind = reminders[i].kind;
    tr.title = `${reminders[i].kind} · in the stage since ${localTime(reminders[i].entered_at)}`;
    tr.addEventListener("click", () => showAudit(reminders[i]));
  });
}

// A deal's title and customer, from GET /deals/{id} and GET /customers/{id}: each asked for once a page load.
function dealName(dealId) {
  if (!dealNames.has(dealId)) {
    dealNames.set(dealId, api(`/deals/${dealId}`).then(async (deal) => ({
      item: deal.title, customer: await customerName(deal.customer_id) })));
    dealNames.get(dealId).catch(() => dealNames.delete(dealId)); // a failure is asked again next time
  }
  return dealNames.get(dealId);
}

function customerName(customerId) {
  if (!customerNames.has(customerId)) {
    customerNames.set(customerId, api(`/customers/${customerId}`).then((c) => c.company || c.name || ""));
    customerNames.get(customerId).catch(() => customerNames.delete(customerId));
  }
  return customerNames.get(customerId);
}

// The stuck table's rows (data-item-id) get their deal's title and customer as the answers come.
function nameRows(trs) {
  for (const tr of trs) {
    dealName(tr.dataset.itemId).then(({ item, customer }) => {
      tr.cells[0].textContent = item;
      tr.cells[1].textContent = customer || "–";
      tr.dataset.named = "true";
    }, (error) => { tr.cells[0].textContent = `(${error.message})`; });
  }
}

// item: { kind: "deal" | "ticket" | "lead", item_id, item (its name), customer }
async function showAudit(item) {
  const shown = ++auditShown;
  $("audit-title").textContent = item.customer ? `${item.item} · ${item.customer}` : item.item;
  $("audit-note").textContent = "loading…";
  try {
    const [entries, note] = await auditEntries(item);
    if (shown !== auditShown) return;
    $("audit").replaceChildren(...entries.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
    $("audit-note").textContent = note;
    $("audit").dataset.item = item.item_id;
    $("audit-panel").scrollIntoView({ block: "nearest" });
  } catch (error) {
    if (shown === auditShown) $("audit-note").textContent = `(${error.message})`;
  }
}

async function auditEntries(item) {
  if (item.kind === "ticket") return ticketTrail(item.item_id);
  if (item.kind === "lead") return leadState(item.item_id);
  const history = items(await api(`/deals/${item.item_id}/history?limit=500`));
  return [history.map((e) => {
    const move = e.from_stage ? ` ${e.from_stage} → ${e.to_stage}` : (e.to_stage ? ` ${e.to_stage}` : "");
    return `${localTime(e.occurred_at)} · ${e.actor} · ${e.event}${move}${e.detail ? ` · ${e.detail}` : ""}`;
  }), "the deal's history: who, when, from which stage to which, why"];
}

// A ticket's trail: its own entries in its customer's timeline (GET /customers/{id}/timeline, page by page).
async function ticketTrail(ticketId) {
  const ticket = await api(`/tickets/${ticketId}`);
  const found = [];
  let offset = 0;
  for (let n = 0; n < TIMELINE_PAGES && offset !== null; n++) {
    const page = await api(`/customers/${ticket.customer_id}/timeline?limit=500&offset=${offset}`);
    found.push(...page.items.filter((e) => e.subject_id === ticketId));
    offset = page.next_offset;
  }
  return [found.map((e) => `${localTime(e.occurred_at)} · ${e.actor} · ${e.kind} · ${e.summary}`),
          `the ticket's entries in its customer's timeline · now ${ticket.status}, assignee ${ticket.assignee || "–"}`];
}

// A lead has no audit route of its own (its events join a customer's timeline once converted): its state now.
async function leadState(leadId) {
  const lead = await api(`/leads/${leadId}`);
  return [[`${lead.status} · owner ${lead.owner || "–"} · channel ${lead.channel} · ${lead.company || ""}`],
          "the lead's state now (a lead's events join its customer's timeline once it is converted)"];
}
