//! The console's words in the three languages of the regulation: Kazakh,
//! Russian and English. A page asks for a text by its key; the language is
//! the session's (the switch in the header).

use egov_regulation::Definition;

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    Kk,
    Ru,
    #[default]
    En,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Kk, Lang::Ru, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Kk => "kk",
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.code() == code)
    }

    /// The language's own name, for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Kk => "Қазақша",
            Lang::Ru => "Русский",
            Lang::En => "English",
        }
    }

    /// One of three texts given in the order kk, ru, en.
    pub fn pick<'a>(self, kk: &'a str, ru: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Kk => kk,
            Lang::Ru => ru,
            Lang::En => en,
        }
    }
}

/// The title of the definition's step `id` in `lang`, or `fallback` for a step it lacks.
pub fn step_title<'a>(definition: &'a Definition, lang: Lang, id: &str, fallback: &'a str) -> &'a str {
    definition.step(id).map_or(fallback, |step| step.title.get(lang.code()))
}

/// A path step's detail: a refusal ground's code with its text in `lang`, anything else as it is.
pub fn detail(definition: &Definition, lang: Lang, detail: &str) -> String {
    if let Some(ground) = definition.refusal_ground(detail) {
        return format!("{detail}: {}", ground.text(lang.code()));
    }
    if let Some(id) = detail.strip_prefix("gateway message ") {
        return format!("{} {id}", t(lang, "message.of.gateway"));
    }
    // Process 9's record: "ticket R-…, waited N min", or "ticket R-…, window W, waited N min".
    if let Some((ticket, waited)) = detail.strip_prefix("ticket ").and_then(|rest| rest.split_once(", waited "))
        && let Some(minutes) = waited.strip_suffix(" min")
    {
        let ticket = match ticket.split_once(", window ") {
            Some((number, window)) => format!("{number}, {} {window}", t(lang, "window")),
            None => ticket.to_owned(),
        };
        return format!(
            "{} {ticket}, {} {minutes} {}",
            t(lang, "ticket"),
            t(lang, "waited"),
            t(lang, "unit.minutes.short")
        );
    }
    // Process 3's record of what each registry answered: "individuals: found; notary: STATUS".
    if detail.starts_with("individuals: ") {
        return detail
            .split("; ")
            .map(|part| match part.split_once(": ") {
                Some((registry, answer)) => {
                    let answer = match answer {
                        "found" => t(lang, "found"),
                        "not found" => t(lang, "not.found"),
                        other => other,
                    };
                    format!("{}: {answer}", participant(lang, registry))
                }
                None => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    detail.to_owned()
}

/// The name of a document of the checklist in `lang`, or its kind.
pub fn document_name<'a>(definition: &'a Definition, lang: Lang, kind: &'a str) -> &'a str {
    definition
        .documents
        .iter()
        .find(|document| document.code == kind)
        .map_or(kind, |document| document.text(lang.code()))
}

/// The heading of the notice `code` in `lang`, or the code.
pub fn notice_heading<'a>(definition: &'a Definition, lang: Lang, code: &'a str) -> &'a str {
    definition.notice(code).and_then(|notice| notice.heading.as_ref()).map_or(code, |heading| heading.get(lang.code()))
}

/// "yes" or "no" (a branch) in `lang`; anything else as it is.
pub fn branch(lang: Lang, branch: &str) -> &str {
    match branch {
        "yes" => t(lang, "yes"),
        "no" => t(lang, "no"),
        other => other,
    }
}

/// A participant's name (workstation, gateway, regional, individuals, notary) in `lang`.
pub fn participant(lang: Lang, name: &str) -> &str {
    match name {
        "workstation" => t(lang, "participant.workstation"),
        "gateway" => t(lang, "participant.gateway"),
        "regional" => t(lang, "participant.regional"),
        "individuals" => t(lang, "participant.individuals"),
        "notary" => t(lang, "participant.notary"),
        "shep" => t(lang, "participant.shep"),
        other => other,
    }
}

/// (key, kk, ru, en).
const TEXTS: &[(&str, &str, &str, &str)] = &[
    ("console", "egov консолі", "Консоль egov", "egov console"),
    ("nav", "Негізгі мәзір", "Главное меню", "Main menu"),
    ("language", "Тіл", "Язык", "Language"),
    ("home", "Басты бет", "Главная", "Home"),
    ("operator", "Оператор", "Оператор", "Operator"),
    ("staff", "Қызметкерлер", "Сотрудники", "Provider staff"),
    ("applications", "Өтінімдер", "Заявки", "Applications"),
    ("incidents", "Инциденттер", "Инциденты", "Incidents"),
    ("sla", "Мерзімдер (SLA)", "Сроки (SLA)", "Deadlines (SLA)"),
    ("regulation", "Регламент", "Регламент", "Regulation"),
    (
        "home.intro",
        "Мемлекеттік корпорация мен өңірлік шлюз арасындағы алмасудың веб-консолі: әр әрекет мүшенің кілтімен қол қойылады.",
        "Веб-консоль обмена Государственной корпорации и регионального шлюза: каждое действие подписывается ключом участника.",
        "The web console of the exchange between the State Corporation and the regional gateway: every action is signed with the member's key.",
    ),
    ("login", "Кіру", "Войти", "Log in"),
    ("logout", "Шығу", "Выйти", "Log out"),
    (
        "login.operator",
        "Оператор ретінде кіру (1-процесс)",
        "Вход оператора (процесс 1)",
        "Operator log-in (process 1)",
    ),
    ("login.name", "Логин", "Логин", "Login"),
    ("password", "Құпия сөз", "Пароль", "Password"),
    ("logged.in.as", "Кірген", "Вы вошли как", "Logged in as"),
    ("new.application", "Жаңа өтінім (2-процесс)", "Новая заявка (процесс 2)", "New application (process 2)"),
    ("applicant.iin", "Өтініш берушінің ЖСН", "ИИН заявителя", "Applicant's IIN"),
    ("representative.iin", "Өкілдің ЖСН (бар болса)", "ИИН представителя (если есть)", "Representative's IIN (if any)"),
    ("notarised", "Нотариат куәландырған сенімхат", "Нотариальная доверенность", "Notarised power of attorney"),
    ("poa.number", "Сенімхаттың нөмірі", "Номер доверенности", "Power of attorney number"),
    ("poa.issued", "Сенімхат берілген күн", "Дата выдачи доверенности", "Power of attorney issued on"),
    (
        "open.form",
        "Нысанды ашу және деректерді тексеру",
        "Открыть форму и проверить данные",
        "Open the form and look the data up",
    ),
    ("my.applications", "Менің өтінімдерім", "Мои заявки", "My applications"),
    ("application", "Өтінім", "Заявка", "Application"),
    ("state", "Күйі", "Состояние", "State"),
    ("outcome", "Нәтиже", "Итог", "Outcome"),
    ("due", "Мерзімі", "Срок", "Due"),
    ("registration", "Тіркеу нөмірі", "Регистрационный номер", "Registration"),
    (
        "lookup.result",
        "Деректерді тексеру нәтижесі (3-процесс, 1-шарт)",
        "Результат проверки данных (процесс 3, условие 1)",
        "Look-up result (process 3, condition 1)",
    ),
    ("person", "Тұлға", "Лицо", "Person"),
    ("born", "Туған күні", "Дата рождения", "Born"),
    ("power.of.attorney", "Сенімхат", "Доверенность", "Power of attorney"),
    ("notice", "Хабарлама", "Уведомление", "Notice"),
    ("documents", "Құжаттар", "Документы", "Documents"),
    (
        "attach.sign",
        "Құжаттарды тіркеу және қол қою (5-процесс)",
        "Прикрепить документы и подписать (процесс 5)",
        "Attach the documents and sign (process 5)",
    ),
    (
        "sign.submit",
        "Қол қою және жіберу (5-6-процестер)",
        "Подписать и отправить (процессы 5-6)",
        "Sign and submit (processes 5-6)",
    ),
    ("required", "міндетті", "обязательно", "required"),
    ("hand.over", "Нәтижені беру (9-процесс)", "Выдача результата (процесс 9)", "Hand-over of the result (process 9)"),
    ("take.ticket", "Кезек талонын алу", "Взять талон очереди", "Take a queue ticket"),
    ("issue.result", "Нәтижені беру", "Выдать результат", "Hand the result over"),
    ("ticket", "Талон", "Талон", "Ticket"),
    ("call.next", "Келесі талонды шақыру", "Вызвать следующий талон", "Call the next ticket"),
    ("called", "шақырылды", "вызван", "called"),
    ("no.ticket.waiting", "Кезекте талон жоқ", "В очереди нет талонов", "No ticket waits in the queue"),
    ("window", "терезе", "окно", "window"),
    ("withdraw", "Өтінімді кері қайтарып алу", "Отозвать заявку", "Withdraw the application"),
    ("withdraw.reason", "Себебі", "Причина", "Reason"),
    (
        "withdraw.confirm",
        "Өтінім кері қайтарылатынын растаймын: оны қайта ашу мүмкін емес",
        "Подтверждаю отзыв заявки: его нельзя отменить",
        "I confirm the withdrawal: it cannot be undone",
    ),
    ("come.back", "Қайта келу уақыты", "Прийти снова", "Come back at"),
    ("tester.view", "Сынаушының көрінісі", "Вид для тестировщика", "Tester's view"),
    ("staff.login", "Қызметкер ретінде кіру", "Вход сотрудника", "Staff log-in"),
    ("member", "Қызметкер", "Сотрудник", "Member"),
    ("queue", "Кезек: маған күтіп тұрған қадамдар", "Очередь: шаги, ожидающие меня", "Queue: steps waiting on me"),
    ("queue.empty", "Күтіп тұрған қадам жоқ.", "Ожидающих шагов нет.", "No step waits on you."),
    (
        "office.receive",
        "Көрсетушінің кеңсесінде өтінішті қабылдау (3-тармақ)",
        "Приём заявления в канцелярии услугодателя (пункт 3)",
        "Receive an application at the provider's office (paragraph 3)",
    ),
    ("office.receive.sign", "Қабылдау және қол қою", "Принять и подписать", "Receive and sign"),
    ("office.received", "Кеңседе қабылданды", "Принято в канцелярии", "Received at the office"),
    ("step", "Қадам", "Шаг", "Step"),
    ("since", "Басталды", "Начат", "Since"),
    ("deadline", "Мерзімі", "Крайний срок", "Deadline"),
    ("actor", "Орындаушы", "Исполнитель", "Actor"),
    ("waits.on", "Күтуде", "Ожидает", "Waits on"),
    ("open", "Ашу", "Открыть", "Open"),
    ("decision", "Шешім", "Решение", "Decision"),
    ("yes", "Иә", "Да", "Yes"),
    ("no", "Жоқ", "Нет", "No"),
    ("ground", "Бас тарту негізі", "Основание отказа", "Refusal ground"),
    ("do.step", "Қадамды орындау және қол қою", "Выполнить шаг и подписать", "Do the step and sign"),
    ("hand.over.draft", "Жобаны басшыға беру", "Передать проект руководителю", "Hand the draft over to the head"),
    ("sign.result", "Нәтижеге қол қою (ЭЦҚ)", "Подписать результат (ЭЦП)", "Sign the result (EDS)"),
    ("draft", "Нәтиже жобасы", "Проект результата", "Draft result"),
    ("sign.refusal", "Бас тартуға қол қою (ЭЦҚ)", "Подписать отказ (ЭЦП)", "Sign the refusal (EDS)"),
    (
        "signed.by.decider",
        "Бас тартуға оны шешкен лауазымды тұлға қол қояды",
        "Отказ подписывает должностное лицо, принявшее решение",
        "The refusal is signed by the official who decided it",
    ),
    ("signed.result", "Қол қойылған нәтиже", "Подписанный результат", "Signed result"),
    ("search", "Іздеу", "Поиск", "Search"),
    ("any", "кез келген", "любой", "any"),
    ("in.progress", "орындалуда", "в работе", "in progress"),
    ("from", "бастап", "с", "from"),
    ("to", "дейін", "по", "to"),
    ("standing", "Мерзім жағдайы", "Соблюдение сроков", "Standing"),
    ("missed", "өткізілді", "просрочен", "missed"),
    ("at.risk", "қауіп бар", "под угрозой", "at risk"),
    ("met", "сақталды", "соблюдён", "met"),
    ("on.track", "уақытында", "в срок", "on track"),
    ("none.found", "Ештеңе табылмады.", "Ничего не найдено.", "Nothing found."),
    ("path", "Жол", "Путь", "Path"),
    ("started", "Басталды", "Начало", "Started"),
    ("ended", "Аяқталды", "Окончание", "Ended"),
    ("timeline", "Уақыт сызығы", "Временная шкала", "Timeline"),
    ("diagram", "Блок-схема (1-қосымша)", "Блок-схема (приложение 1)", "Block diagram (Annex 1)"),
    ("messages", "Қол қойылған хабарламалар", "Подписанные сообщения", "Signed messages"),
    (
        "messages.note",
        "Әр қатысушының журналындағы өтінімнің әр хабарламасы; әр қолтаңба сенім тізілімі бойынша тексерілген.",
        "Каждое сообщение заявки в журнале каждого участника; каждая подпись проверена по реестру доверия.",
        "Every message of the application in every participant's log; every signature verified with the trust registry.",
    ),
    ("edge.messages", "ШЭП хабарламалары", "Сообщения ШЭП", "SHEP messages"),
    ("edge.show", "Көрсету", "Показать", "Show"),
    (
        "edge.note",
        "Өтінімнің хабарламалары оның нөмірі бойынша, ШЭП шлюзінің журналымен бірге (әр конвертпен оның SOAP хабарламасы): Мемлекеттік корпорацияның жүйесі сыртқы болғанда, жұмыс орны өтінімді білмейді.",
        "Сообщения заявки по её номеру, вместе с журналом шлюза ШЭП (каждый конверт с его SOAP-сообщением): когда система Государственной корпорации внешняя, рабочее место заявку не знает.",
        "An application's messages by its id, the SHEP edge's log among them (each envelope with its SOAP message): with an external State Corporation system, the workstation does not know the application.",
    ),
    (
        "edge.offer",
        "Өтінімнің хабарламалары ШЭП шлюзінде",
        "Сообщения заявки на шлюзе ШЭП",
        "The application's messages at the SHEP edge",
    ),
    ("edge.off", "ШЭП беті қосылмаған.", "Лицо ШЭП не включено.", "The SHEP face is not on."),
    (
        "hops",
        "Әр қатысушының мониторинг жазбалары",
        "Записи мониторинга каждого участника",
        "Every participant's monitoring records",
    ),
    ("participant", "Қатысушы", "Участник", "Participant"),
    ("sender", "Жіберуші", "Отправитель", "Sender"),
    ("recipient", "Алушы", "Получатель", "Recipient"),
    ("service", "Қызмет", "Сервис", "Service"),
    ("time", "Уақыт", "Время", "Time"),
    ("signatures", "Қолтаңбалар", "Подписи", "Signatures"),
    ("verified", "тексерілді", "проверена", "verified"),
    ("proof.title", "Дәлелдер", "Доказательства", "Evidence"),
    (
        "proof.note",
        "Әр қатысушының журналы: өтінімнің жазбалары қатысушының қол қойылған бақылау нүктесіне қарсы Меркл ағашына енгізілгенінің дәлелдерімен, мұнда сенім тізіліміндегі кілттермен тексерілген",
        "Журнал каждого участника: записи заявки с доказательствами их включения в дерево Меркла относительно подписанной участником контрольной точки, проверенные здесь ключами реестра доверия",
        "Each participant's log: the application's entries with the proofs of their inclusion in its Merkle tree against the checkpoint it signed, verified here with the trust registry's keys",
    ),
    (
        "proof.proved",
        "{P} қатысушысының {N} өлшемді бақылау нүктесіне қарсы дәлелденді",
        "доказано относительно контрольной точки {N} участника {P}",
        "proved against checkpoint {N} of participant {P}",
    ),
    ("proof.entries", "жазба", "записей", "entries"),
    ("proof.cosigned", "куәлар қол қойған", "заверено свидетелями", "cosigned by the witnesses"),
    (
        "proof.nothing",
        "бұл өтінімнің хабарламасы жоқ",
        "сообщений этой заявки нет",
        "holds no message of this application",
    ),
    (
        "proof.not.yet",
        "жазбаларды әлі бақылау нүктесі қамтымайды",
        "записи ещё не покрыты контрольной точкой",
        "its entries are not yet covered by a checkpoint",
    ),
    ("proof.download", "Дәлелдер топтамасын жүктеу", "Скачать пакет доказательств", "Download evidence bundle"),
    ("not.verified", "тексерілмеді", "не проверена", "NOT verified"),
    ("body", "Мазмұны", "Содержание", "Body"),
    ("retry", "Қайталау", "Повторить", "Retry"),
    ("attempts", "Талпыныстар", "Попытки", "Attempts"),
    ("last.error", "Соңғы қате", "Последняя ошибка", "Last error"),
    ("target", "Алушы", "Получатель", "Target"),
    ("incidents.none", "Инцидент жоқ.", "Инцидентов нет.", "No incidents."),
    ("show.all", "Барлық жөнелтілмегендерді көрсету", "Показать все ожидающие доставки", "Show every pending delivery"),
    (
        "sla.intro",
        "Мерзімі өткен немесе қауіп төнген қадамдар мен мерзімдер.",
        "Шаги и сроки, которые просрочены или под угрозой.",
        "The steps and terms that missed their deadline or are at risk of it.",
    ),
    ("item", "Қадам немесе мерзім", "Шаг или срок", "Step or term"),
    ("steps", "Қадамдар", "Шаги", "Steps"),
    ("duration", "Ұзақтығы", "Длительность", "Duration"),
    ("next", "Келесі", "Далее", "Next"),
    ("terms", "Мерзімдер", "Сроки", "Terms"),
    ("error", "Қате", "Ошибка", "Error"),
    ("not.found", "Табылмады", "Не найдено", "Not found"),
    ("done", "Орындалды", "Выполнено", "Done"),
    ("file.limit", "Әр файл ең көбі", "Каждый файл не более", "Each file at most"),
    ("unreachable", "қол жетімсіз", "недоступен", "not reachable"),
    ("document.kind", "Түрі", "Вид", "Kind"),
    ("document.title", "Атауы", "Название", "Title"),
    ("pages", "Беттер", "Страниц", "Pages"),
    ("direction", "Бағыты", "Направление", "Direction"),
    ("record.kind", "Жазба", "Запись", "Record"),
    ("status", "Нәтиже коды", "Код результата", "Status"),
    ("id", "Нөмірі", "Номер", "Id"),
    ("found", "табылды", "найдено", "found"),
    ("permit", "Рұқсат беру", "Разрешить", "Permit"),
    ("overdue", "мерзімі өтті", "просрочено", "overdue"),
    ("zoom", "Масштаб", "Масштаб", "Zoom"),
    ("zoom.minutes", "минуттар", "минуты", "minutes"),
    ("zoom.hours", "сағаттар", "часы", "hours"),
    ("zoom.days", "күндер", "дни", "days"),
    ("zoom.weeks", "апталар", "недели", "weeks"),
    ("now", "қазір", "сейчас", "now"),
    ("overdue.by", "Мерзімнен асқаны", "Просрочено на", "Overdue by"),
    ("found.count", "Табылды", "Найдено", "Found"),
    ("export", "Жүктеп алу", "Выгрузить", "Export"),
    ("pages.nav", "Беттер", "Страницы", "Pages"),
    ("first.page", "Бірінші бет", "Первая страница", "First page"),
    ("next.page", "Келесі бет", "Следующая страница", "Next page"),
    ("previous.page", "Алдыңғы бет", "Предыдущая страница", "Previous page"),
    ("on.page", "Осы бетте", "На этой странице", "On this page"),
    ("unit.hours.short", "сағ", "ч", "h"),
    ("hop.request.in", "Сұрау келді", "Запрос получен", "Request in"),
    ("hop.request.out", "Сұрау жіберілді", "Запрос отправлен", "Request out"),
    ("hop.response.in", "Жауап келді", "Ответ получен", "Response in"),
    ("hop.response.out", "Жауап жіберілді", "Ответ отправлен", "Response out"),
    ("latency", "Кідіріс", "Задержка", "Latency"),
    ("latency.handled", "өңдеу", "обработка", "handled"),
    ("latency.onward", "әрі қарай", "далее", "onward"),
    ("delivery.pending", "Жеткізу күтуде", "Доставка ожидает", "Delivery pending"),
    ("refuse", "Бас тарту", "Отказать", "Refuse"),
    (
        "not.your.step",
        "Бұл қадам сіздікі емес: оны тек қарау мүмкін.",
        "Этот шаг не ваш: его можно только просмотреть.",
        "This step is not yours: it is shown read-only.",
    ),
    (
        "result.not.arrived",
        "Нәтиже әлі келген жоқ: талон мен беру нәтиже келгенде ашылады.",
        "Результат ещё не поступил: талон и выдача откроются, когда он поступит.",
        "The result has not arrived: the ticket and the hand-over open once it has.",
    ),
    ("withdrawal", "Кері қайтарып алу", "Отзыв", "Withdrawal"),
    ("waited", "күтті", "ожидание", "waited"),
    ("unit.minutes.short", "мин", "мин", "min"),
    ("message.of.gateway", "ЭҮШ хабарламасы", "сообщение ШЭП", "message.of.gateway"),
    (
        "staff.no.password",
        "Бұл симулятор: қызметкер тізімнен құпия сөзсіз таңдалады, оның кілті кілттер каталогында.",
        "Это симулятор: сотрудник выбирается из списка без пароля, его ключ лежит в каталоге ключей.",
        "This is a simulator: a member is picked from the list without a password; their key is in the key directory.",
    ),
    ("kind.client", "клиент", "клиент", "client"),
    ("kind.server", "сервер", "сервер", "server"),
    ("applicant", "Өтініш беруші", "Заявитель", "Applicant"),
    ("ahead", "алда", "впереди", "ahead"),
    (
        "time.zone",
        "Уақыт Астана бойынша (UTC+05:00).",
        "Время астанинское (UTC+05:00).",
        "Times are Astana time (UTC+05:00).",
    ),
    ("participant.workstation", "МК АЖО", "АРМ ГК", "workstation"),
    ("participant.gateway", "ЭҮШ", "ШЭП", "gateway"),
    ("participant.regional", "ӨЭҮШ АЖО", "АРМ РШЭП", "regional"),
    ("participant.individuals", "«Жеке тұлғалар» МДҚ", "ГБД «Физические лица»", "individuals"),
    ("participant.notary", "Нотариат", "Нотариат", "notary"),
    ("participant.shep", "ЭҮШ беті", "Лицо ШЭП", "SHEP edge"),
    ("direction.received", "алынды", "получено", "received"),
    ("direction.sent", "жіберілді", "отправлено", "sent"),
    ("provider", "Көрсетуші", "Услугодатель", "Provider"),
    ("channel", "Арна", "Канал", "Channel"),
    ("incident", "инцидент", "инцидент", "incident"),
    ("bytes", "байт", "байт", "bytes"),
    ("signed", "қол қойылған", "подписано", "signed"),
    (
        "refusal.ground.required",
        "Бас тарту үшін негізді таңдаңыз.",
        "Для отказа выберите основание.",
        "A refusal needs its ground.",
    ),
];

/// The console's refusals in the three languages, by reason code: (code, kk,
/// ru, en). The code is always shown; in English the participant's own
/// message follows it, in Kazakh and Russian the table's. A code missing here
/// takes the text of its prefix (`envelope.`), or of every refusal.
const PROBLEMS: &[(&str, &str, &str, &str)] = &[
    ("console.required", "міндетті өріс толтырылмаған", "не заполнено обязательное поле", "a required field is empty"),
    (
        "console.csrf",
        "нысан осы сеанстан емес; ештеңе жасалмады",
        "форма не из этого сеанса; ничего не сделано",
        "the form is not this session's; nothing was done",
    ),
    ("console.file_too_large", "файл тым үлкен", "файл слишком большой", "the file is too large"),
    ("console.bad_form", "нысанды оқу мүмкін емес", "форму невозможно прочитать", "the form cannot be read"),
    ("console.bad_field", "өрістің мәні қате", "неверное значение поля", "a field's value is wrong"),
    ("console.no_key", "қатысушының кілті жоқ", "нет ключа участника", "the member has no key"),
    ("console.unknown_member", "мұндай қызметкер жоқ", "такого сотрудника нет", "no such staff member"),
    ("console.unknown_participant", "мұндай қатысушы жоқ", "такого участника нет", "no such participant"),
    ("console.unknown_step", "мұндай қадам жоқ", "такого шага нет", "no such step"),
    ("console.unreachable", "қатысушы қол жетімсіз", "участник недоступен", "the participant cannot be reached"),
    ("console.not_found", "мұндай бет немесе жазба жоқ", "такой страницы или записи нет", "no such page or record"),
    ("console.confirm", "әрекетті растаңыз", "подтвердите действие", "confirm the action"),
    ("iin.length", "ЖСН 12 цифрдан тұрады", "ИИН состоит из 12 цифр", "an IIN has 12 digits"),
    ("iin.not_digits", "ЖСН тек цифрлардан тұрады", "ИИН состоит только из цифр", "an IIN has digits only"),
    (
        "iin.check_digit",
        "ЖСН-нің бақылау цифры сәйкес емес",
        "контрольная цифра ИИН не сходится",
        "the IIN's check digit is wrong",
    ),
    ("iin.date", "ЖСН-дегі туған күн қате", "дата рождения в ИИН неверна", "the IIN's birth date is wrong"),
    (
        "iin.century",
        "ЖСН-дегі ғасыр мен жыныс цифры қате",
        "цифра века и пола в ИИН неверна",
        "the IIN's century digit is wrong",
    ),
    (
        "iin.future",
        "ЖСН-дегі туған күн болашақта",
        "дата рождения в ИИН в будущем",
        "the IIN's birth date is in the future",
    ),
    ("iin.unusable_prefix", "бұл ЖСН пайдаланылмайды", "этот ИИН не используется", "this IIN is not used"),
    (
        "process.wrong_actor",
        "бұл қадам басқа орындаушыныкі",
        "этот шаг выполняет другой исполнитель",
        "another actor does this step",
    ),
    (
        "process.not_current_step",
        "өтінім бұл қадамда емес",
        "заявка не на этом шаге",
        "the application is not at this step",
    ),
    ("process.ended", "өтінім аяқталған", "заявка завершена", "the application has ended"),
    (
        "request.bad_list_query",
        "тізім сұрауы дұрыс емес: бірінші беттен бастаңыз",
        "неверный запрос списка: начните с первой страницы",
        "the list's query is not understood: start from the first page",
    ),
    ("process.branch_required", "шешім қажет", "нужно решение", "a decision is needed"),
    ("process.branch_not_allowed", "бұл қадамда шешім жоқ", "на этом шаге решения нет", "this step takes no decision"),
    (
        "process.not_handed_over",
        "нәтиже әлі басшыға берілмеген",
        "результат ещё не передан руководителю",
        "the result has not been handed over yet",
    ),
    (
        "process.handed_over_already",
        "нәтиже басшыға берілген",
        "результат уже передан руководителю",
        "the result was already handed over",
    ),
    ("process.no_hand_over", "бұл қадамда беру жоқ", "на этом шаге нет передачи", "this step has no hand-over"),
    ("process.unknown_step", "мұндай қадам жоқ", "такого шага нет", "no such step"),
    ("process.unknown_channel", "мұндай арна жоқ", "такого канала нет", "no such channel"),
    (
        "workstation.bad_credentials",
        "логин немесе құпия сөз қате",
        "неверный логин или пароль",
        "wrong login or password",
    ),
    (
        "workstation.bad_session",
        "сеанс аяқталды; қайта кіріңіз",
        "сеанс завершён; войдите снова",
        "the session has ended; log in again",
    ),
    ("workstation.unknown_application", "мұндай өтінім жоқ", "такой заявки нет", "no such application"),
    (
        "workstation.not_your_application",
        "бұл өтінім басқа оператордікі",
        "это заявка другого оператора",
        "another operator's application",
    ),
    ("workstation.application_exists", "өтінім бұрын ашылған", "заявка уже открыта", "the application is already open"),
    (
        "workstation.incomplete_package",
        "құжаттар топтамасы толық емес",
        "пакет документов неполный",
        "the package of documents is incomplete",
    ),
    ("workstation.result_not_ready", "нәтиже әлі дайын емес", "результат ещё не готов", "the result is not ready yet"),
    (
        "workstation.no_ticket",
        "алдымен кезек талонын алыңыз",
        "сначала возьмите талон очереди",
        "take a queue ticket first",
    ),
    (
        "workstation.ticket_not_called",
        "бұл талон сізге шақырылмаған",
        "этот талон не вызван к вам",
        "this ticket is not called to you",
    ),
    ("workstation.window_busy", "терезе бос емес", "окно занято", "the window is busy"),
    (
        "workstation.not_withdrawable",
        "жіберілген өтінімді кері қайтарып алуға болмайды",
        "отправленную заявку отозвать нельзя",
        "a submitted application cannot be withdrawn",
    ),
    (
        "counter.self_representation",
        "өтініш беруші өзінің өкілі бола алмайды",
        "заявитель не может быть своим представителем",
        "the applicant cannot represent themselves",
    ),
    ("workstation.bad_date", "күн қате", "неверная дата", "a wrong date"),
    ("workstation.bad_field", "өрістің мәні қате", "неверное значение поля", "a field's value is wrong"),
    (
        "workstation.missing_field",
        "міндетті өріс толтырылмаған",
        "не заполнено обязательное поле",
        "a required field is empty",
    ),
    (
        "workstation.power_of_attorney_data_not_empty",
        "нотариалды емес сенімхаттың нөмірі мен күні болмайды",
        "у ненотариальной доверенности нет номера и даты",
        "a power of attorney not notarised has no number or date",
    ),
    (
        "workstation.unknown_document_kind",
        "құжаттың мұндай түрі жоқ",
        "такого вида документа нет",
        "no such kind of document",
    ),
    ("workstation.bad_document", "құжат қате", "документ неверен", "the document is wrong"),
    ("workstation.unknown_service", "мұндай қызмет жоқ", "такой услуги нет", "no such service"),
    ("regional.unknown_registration", "мұндай тіркеу жоқ", "такой регистрации нет", "no such registration"),
    (
        "regional.unknown_refusal_ground",
        "бұл қадамның мұндай бас тарту негізі жоқ",
        "у этого шага нет такого основания отказа",
        "this step has no such refusal ground",
    ),
    (
        "regional.unexpected_refusal_ground",
        "бас тарту негізі тек «жоқ» шешіміне беріледі",
        "основание отказа даётся только к решению «нет»",
        "a refusal ground goes only with a refusal",
    ),
    (
        "regional.unexpected_decision",
        "бұл қадамда шешім жоқ",
        "на этом шаге решения нет",
        "this step takes no decision",
    ),
    ("regional.unknown_decision", "шешім таңдалмаған", "решение не выбрано", "no decision chosen"),
    (
        "regional.incomplete_package",
        "құжаттар топтамасы толық емес",
        "пакет документов неполный",
        "the package of documents is incomplete",
    ),
    (
        "regional.use_sign_result",
        "нәтижеге басшы қол қояды",
        "результат подписывает руководитель",
        "the head signs the result",
    ),
    (
        "regional.not_the_deciding_official",
        "бас тартуға шешім қабылдаған лауазымды тұлға қол қояды",
        "отказ подписывает должностное лицо, принявшее решение",
        "the refusal is signed by the official who decided",
    ),
    ("regional.result_not_signed", "нәтижеге қол қойылмаған", "результат не подписан", "the result is not signed"),
    (
        "regional.draft_mismatch",
        "қол қойылған жоба нәтижеге сәйкес емес",
        "подписанный проект не совпадает с результатом",
        "the signed draft is not the result",
    ),
    (
        "regional.already_registered",
        "өтінім тіркелген",
        "заявка уже зарегистрирована",
        "the application is already registered",
    ),
    (
        "regional.no_office_channel",
        "регламентте кеңсе арнасы жоқ",
        "в регламенте нет канала канцелярии",
        "the regulation has no office channel",
    ),
    (
        "regional.unknown_document_kind",
        "құжаттың мұндай түрі жоқ",
        "такого вида документа нет",
        "no such kind of document",
    ),
    ("regional.bad_document", "құжат қате", "документ неверен", "the document is wrong"),
    ("regional.unknown_service", "мұндай қызмет жоқ", "такой услуги нет", "no such service"),
    ("grpc.unavailable", "қатысушы қол жетімсіз", "участник недоступен", "the participant cannot be reached"),
    (
        "evidence.unknown_application",
        "қатысушының журналында бұл өтінім жоқ",
        "в журнале участника нет этой заявки",
        "the participant's log holds nothing of this application",
    ),
    // By prefix: a code not listed above.
    ("audit.", "дәлел тексерілмеді", "доказательство не проверено", "the evidence does not verify"),
    ("envelope.", "хабарлама қабылданбады", "сообщение отклонено", "the message was refused"),
    ("tls.", "сертификат қабылданбады", "сертификат отклонён", "the certificate was refused"),
    ("store.", "қатысушының қоймасы қате", "ошибка хранилища участника", "the participant's store failed"),
    ("gateway.", "шлюз сұрауды қабылдамады", "шлюз отклонил запрос", "the gateway refused the request"),
    ("admin.", "әкімші сұрауы қабылданбады", "административный запрос отклонён", "the admin request was refused"),
    ("grpc.", "қатысушы сұрауды қабылдамады", "участник отклонил запрос", "the participant refused the request"),
    ("", "сұрау қабылданбады", "запрос отклонён", "the request was refused"),
];

/// The English words (three letters or more, lower case) a Kazakh or Russian
/// page must not show: those of the console's texts and refusals, and of the
/// definition's step titles, actors, outcomes, terms, channels, notices,
/// documents and refusal grounds. A Latin word the Kazakh or Russian texts
/// use themselves (egov, SLA) is not among them.
pub fn english_words(definition: &Definition) -> std::collections::BTreeSet<String> {
    fn words(text: &str) -> impl Iterator<Item = String> + '_ {
        text.split(|c: char| !c.is_ascii_alphabetic()).filter(|word| word.len() >= 3).map(str::to_lowercase)
    }
    let mut english: Vec<&str> =
        TEXTS.iter().map(|(_, _, _, en)| *en).chain(PROBLEMS.iter().map(|(.., en)| *en)).collect();
    for step in definition.steps() {
        english.push(&step.title.en);
    }
    english.extend(definition.actors.values().map(|name| name.en.as_str()));
    english.extend(definition.outcome_names.values().map(|name| name.en.as_str()));
    english.extend(definition.terms.iter().map(|term| term.title.en.as_str()));
    english.extend(definition.channels.iter().map(|channel| channel.title.en.as_str()));
    for labelled in definition.documents.iter().chain(&definition.refusal_grounds).chain(&definition.notices) {
        english.push(&labelled.en);
        english.extend(labelled.heading.as_ref().map(|heading| heading.en.as_str()));
    }
    let latin_in_kk_ru: std::collections::BTreeSet<String> =
        TEXTS.iter().chain(PROBLEMS).flat_map(|(_, kk, ru, _)| words(kk).chain(words(ru))).collect();
    english.into_iter().flat_map(words).filter(|word| !latin_in_kk_ru.contains(word)).collect()
}

/// The text of a refusal with `code` in `lang`: the table's entry for the
/// code, or for its prefix, or for every refusal.
pub fn problem_text(lang: Lang, code: &str) -> &'static str {
    let exact = PROBLEMS.iter().find(|(c, ..)| *c == code);
    let prefix = || PROBLEMS.iter().find(|(c, ..)| c.ends_with('.') && code.starts_with(c));
    let any = || PROBLEMS.iter().find(|(c, ..)| c.is_empty());
    match exact.or_else(prefix).or_else(any) {
        Some((_, kk, ru, en)) => lang.pick(kk, ru, en),
        None => "",
    }
}

/// The text of `key` in `lang`; a key missing from the table is shown as
/// `[missing text]` (the unit test checks that every key the pages use is there).
pub fn t(lang: Lang, key: &str) -> &'static str {
    // A key built at run time (participant.*, direction.*, kind.*) is looked up as any other.
    match TEXTS.iter().find(|(k, ..)| *k == key) {
        Some((_, kk, ru, en)) => lang.pick(kk, ru, en),
        None => {
            tracing::warn!(key, "console text missing");
            "[missing text]"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_the_console_gives_has_its_text_in_three_languages() {
        let mut codes = std::collections::BTreeSet::new();
        for (code, kk, ru, en) in PROBLEMS {
            assert!(codes.insert(*code), "{code} twice");
            assert!(!kk.is_empty() && !ru.is_empty() && !en.is_empty(), "{code}");
        }
        let sources = [
            include_str!("lib.rs"),
            include_str!("operator.rs"),
            include_str!("staff.rs"),
            include_str!("applications.rs"),
            include_str!("proofs.rs"),
            include_str!("incidents.rs"),
            include_str!("package.rs"),
            include_str!("guard.rs"),
        ];
        for source in sources {
            for (index, _) in source.match_indices("\"console.") {
                let rest = &source[index + 1..];
                let code = &rest[..rest.find(|c: char| !(c.is_ascii_lowercase() || c == '.' || c == '_')).unwrap_or(0)];
                // A code is a whole string ("console.required"), not a host name.
                if code.len() > "console.".len() && rest[code.len()..].starts_with('"') {
                    assert!(codes.contains(code), "the refusal {code:?} has no text in i18n.rs");
                }
            }
        }
        assert_eq!(problem_text(Lang::Ru, "iin.check_digit"), "контрольная цифра ИИН не сходится");
        assert_eq!(problem_text(Lang::Kk, "envelope.stale"), "хабарлама қабылданбады");
        assert_eq!(problem_text(Lang::Ru, "something.else"), "запрос отклонён");
    }

    #[test]
    fn every_key_the_sources_use_is_in_the_table_in_three_languages() {
        let mut keys = std::collections::BTreeSet::new();
        for (key, kk, ru, en) in TEXTS {
            assert!(keys.insert(*key), "{key} twice");
            assert!(!kk.is_empty() && !ru.is_empty() && !en.is_empty(), "{key}");
        }
        let sources = [
            include_str!("layout.rs"),
            include_str!("operator.rs"),
            include_str!("staff.rs"),
            include_str!("applications.rs"),
            include_str!("proofs.rs"),
            include_str!("incidents.rs"),
            include_str!("lib.rs"),
        ];
        for source in sources {
            for (index, _) in source.match_indices("t(lang, \"") {
                let rest = &source[index + 9..];
                let key = &rest[..rest.find('"').unwrap_or(0)];
                assert!(keys.contains(key), "the text {key:?} is not in i18n.rs");
            }
        }
    }
}
